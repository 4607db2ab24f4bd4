"""The committed OpenAPI document, docs/openapi.json, and the rule that guards it: the schema never changes
without a new API version (SPECTACULAR_SETTINGS["VERSION"] in config/settings/base.py).

    python -m billing.api.schema_check          # make lint: fails when the served schema differs from the file
    python -m billing.api.schema_check --write  # after bumping VERSION: rewrite docs/openapi.json

A merchant's generated client is built against one version; a changed schema under the same version would
change that client's meaning silently. `--write` refuses to record a changed schema under an unchanged version.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
BUMP = 'bump SPECTACULAR_SETTINGS["VERSION"] in config/settings/base.py'
WRITE = "python -m billing.api.schema_check --write"


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


MISSING, UNVERSIONED, STALE = "missing", "unversioned", "stale"


def problem(*, served: str, committed: str | None) -> tuple[str, str] | None:
    """(kind, what to do) when the committed document does not match the served one; None when they match.

    unversioned: the schema changed under the same version (never to be recorded); stale: the version changed
    and the file was not rewritten; missing: no file yet."""
    if committed == served:
        return None
    version = json.loads(served)["info"]["version"]
    if committed is None:
        return MISSING, f"{COMMITTED} is missing: run `{WRITE}` and commit it."
    recorded = json.loads(committed)["info"]["version"]
    if recorded == version:
        return UNVERSIONED, (
            f"The API schema changed but its version is still {version!r}: {BUMP}, run `{WRITE}`, commit both."
        )
    return STALE, f"The API version is {version!r} but {COMMITTED.name} holds {recorded!r}: run `{WRITE}`, commit it."


def served_schema() -> str:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
    django.setup()
    from django.utils import translation
    from drf_spectacular.generators import SchemaGenerator

    with translation.override("en"):
        return render(SchemaGenerator().get_schema(request=None, public=True))


def main(argv: list[str]) -> int:
    served = served_schema()
    committed = COMMITTED.read_text() if COMMITTED.exists() else None
    found = problem(served=served, committed=committed)
    if "--write" in argv:
        if found and found[0] == UNVERSIONED:
            print(f"Refusing to write: {found[1]}", file=sys.stderr)  # noqa: T201
            return 1
        COMMITTED.write_text(served)
        return 0
    if found:
        print(found[1], file=sys.stderr)  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
