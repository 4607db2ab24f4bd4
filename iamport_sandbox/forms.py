"""Request parsing (JSON or form bodies, `name[]` query arrays) and typed readers.

Every Iamport operation consumes `application/json` and `application/x-www-form-urlencoded`; form bodies use
PHP-style brackets (`merchant_uid[]=a`, `schedules[0][amount]=9900`), turned into lists and dicts here.
"""

import json
import re
from urllib.parse import parse_qs, parse_qsl

from iamport_sandbox.errors import bad_request

_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")
_PART = re.compile(r"\[([^\[\]]*)\]")


def parse_body(raw: bytes, content_type: str) -> dict:
    if not raw.strip():
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_request("요청 본문은 UTF-8이어야 합니다.") from exc
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        return parse_form(text)
    if ctype == "application/json" or ctype.endswith("+json") or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise bad_request("요청 본문의 JSON 형식이 올바르지 않습니다.") from exc
        if not isinstance(data, dict):
            raise bad_request("요청 본문은 JSON 객체여야 합니다.")
        return data
    return parse_form(text)


def parse_form(text: str) -> dict:
    root: dict = {}
    counters: dict[tuple, int] = {}
    for raw_key, value in parse_qsl(text, keep_blank_values=True):
        match = _KEY.fullmatch(raw_key)
        if not match:
            root[raw_key] = value
            continue
        parts = [match.group(1), *_PART.findall(match.group(2))]
        node, path = root, ()
        for index, part in enumerate(parts):
            if part == "":
                part = str(counters.get(path, 0))
                counters[path] = int(part) + 1
            path = (*path, part)
            if index == len(parts) - 1:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
    return {key: _listify(value) for key, value in root.items()}


def _listify(node):
    if not isinstance(node, dict):
        return node
    converted = {key: _listify(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def parse_query(query: str) -> dict[str, list[str]]:
    return parse_qs(query, keep_blank_values=True)


def q_list(query: dict, name: str) -> list[str]:
    """`name[]=a&name[]=b` (Iamport's form) and plain repeated `name=a&name=b`."""
    return [value for value in query.get(f"{name}[]", []) + query.get(name, []) if value != ""]


def q_one(query: dict, name: str) -> str | None:
    values = query.get(name)
    if not values or values[-1] == "":
        return None
    return values[-1]


# -- typed readers ---------------------------------------------------------------------------------------


def _present(value) -> bool:
    return value is not None and value != ""


def opt_str(params: dict, key: str, max_len: int | None = None) -> str | None:
    value = params.get(key)
    if not _present(value):
        return None
    if isinstance(value, bool) or isinstance(value, dict | list):
        raise bad_request(f"{key} 파라미터는 문자열이어야 합니다.")
    value = str(value)
    if max_len is not None and len(value) > max_len:
        raise bad_request(f"{key} 파라미터는 최대 {max_len}자까지 입력할 수 있습니다.")
    return value


def req_str(params: dict, key: str, max_len: int | None = None) -> str:
    value = opt_str(params, key, max_len)
    if value is None:
        raise bad_request(f"{key} 파라미터가 누락되었습니다.")
    return value


def to_int(value, key: str) -> int:
    """Amounts are JSON numbers; form bodies carry them as strings. Fractions of a won are refused."""
    if isinstance(value, bool):
        raise bad_request(f"{key} 파라미터는 숫자여야 합니다.")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise bad_request(f"{key} 파라미터는 정수여야 합니다.")
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        if re.fullmatch(r"-?\d+\.0*", text):
            return int(text.split(".")[0])
    raise bad_request(f"{key} 파라미터는 숫자여야 합니다.")


def opt_int(params: dict, key: str, *, minimum: int | None = None) -> int | None:
    value = params.get(key)
    if not _present(value):
        return None
    number = to_int(value, key)
    if minimum is not None and number < minimum:
        raise bad_request(f"{key} 파라미터는 {minimum} 이상이어야 합니다.")
    return number


def req_int(params: dict, key: str, *, minimum: int | None = None) -> int:
    value = opt_int(params, key, minimum=minimum)
    if value is None:
        raise bad_request(f"{key} 파라미터가 누락되었습니다.")
    return value


def opt_bool(params: dict, key: str) -> bool:
    value = params.get(key)
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    return str(value).strip().lower() in {"true", "1", "yes", "on"}


def q_int(query: dict, name: str, *, default: int | None = None, minimum: int | None = None) -> int | None:
    value = q_one(query, name)
    if value is None:
        return default
    number = to_int(value, name)
    if minimum is not None and number < minimum:
        raise bad_request(f"{name} 파라미터는 {minimum} 이상이어야 합니다.")
    return number
