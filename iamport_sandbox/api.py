"""The Iamport V1 REST surface: route table, path parameters and the response envelope.

Each handler gets a parsed `Call` and returns an `Answer`; business rules live in `ledger.py`.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote

from iamport_sandbox.forms import opt_bool, q_list, q_one
from iamport_sandbox.ledger import MSG_PAYMENT_NOT_FOUND, Ledger
from iamport_sandbox.webhooks import Notice


@dataclass
class Call:
    method: str
    args: dict
    query: dict
    body: dict
    now: int


@dataclass
class Answer:
    response: object = None
    status: int = 200
    code: int = 0
    message: str | None = None
    notices: list[Notice] = field(default_factory=list)

    def envelope(self) -> dict:
        return {"code": self.code, "message": self.message, "response": self.response}


@dataclass(frozen=True)
class Route:
    method: str
    pattern: tuple[str, ...]
    handler: Callable[[Call], Answer]
    endpoint: str

    def match(self, segments: list[str]) -> dict | None:
        if len(segments) != len(self.pattern):
            return None
        args = {}
        for part, segment in zip(self.pattern, segments, strict=True):
            if part.startswith("{"):
                if segment == "":
                    return None
                args[part[1:-1]] = segment
            elif part != segment:
                return None
        return args


def split_path(path: str) -> list[str]:
    return [unquote(segment) for segment in path.strip("/").split("/")]


def _multi(found: list, missing: list[str], not_found_message: str) -> Answer:
    """Multi-gets: 200 when all found, 207 with the found ones when some are missing, 404 when none."""
    if not found:
        return Answer(None, status=404, code=1, message=not_found_message)
    if missing:
        return Answer(found, status=207, message=f"일부 요청에 대한 정보를 찾을 수 없습니다: {', '.join(missing)}")
    return Answer(found)


class IamportApi:
    def __init__(self, ledger: Ledger):
        self.ledger = ledger
        r = Route
        # Literal routes come before the ones with a placeholder in the same position.
        self.routes: list[Route] = [
            r("POST", ("users", "getToken"), self.get_token, "getToken"),
            # billing keys
            r("GET", ("subscribe", "customers"), self.get_customers, "customers"),
            r(
                "GET",
                ("subscribe", "customers", "{customer_uid}", "payments"),
                self.customer_payments,
                "customers",
            ),
            r(
                "GET",
                ("subscribe", "customers", "{customer_uid}", "schedules"),
                self.customer_schedules,
                "customers",
            ),
            r("POST", ("subscribe", "customers", "{customer_uid}"), self.issue_customer, "customers"),
            r("GET", ("subscribe", "customers", "{customer_uid}"), self.get_customer, "customers"),
            r("DELETE", ("subscribe", "customers", "{customer_uid}"), self.delete_customer, "customers"),
            # charges and schedules
            r("POST", ("subscribe", "payments", "again"), self.again, "again"),
            r("POST", ("subscribe", "payments", "onetime"), self.onetime, "onetime"),
            r("POST", ("subscribe", "payments", "unschedule"), self.unschedule, "unschedule"),
            r("POST", ("subscribe", "payments", "schedule"), self.schedule, "schedule"),
            r("GET", ("subscribe", "payments", "schedule"), self.list_schedules, "schedules"),
            r(
                "GET",
                ("subscribe", "payments", "schedule", "customers", "{customer_uid}"),
                self.customer_schedules,
                "schedules",
            ),
            r(
                "POST",
                ("subscribe", "payments", "schedule", "{merchant_uid}", "reschedule"),
                self.reschedule,
                "schedules",
            ),
            r(
                "POST",
                ("subscribe", "payments", "schedule", "{merchant_uid}", "retry"),
                self.retry,
                "schedules",
            ),
            r("GET", ("subscribe", "payments", "schedule", "{merchant_uid}"), self.get_schedule, "schedules"),
            r(
                "PUT",
                ("subscribe", "payments", "schedule", "{merchant_uid}"),
                self.update_schedule,
                "schedules",
            ),
            # payments
            r("POST", ("payments", "cancel"), self.cancel, "cancel"),
            r("POST", ("payments", "prepare"), self.prepare, "prepare"),
            r("PUT", ("payments", "prepare"), self.prepare_update, "prepare"),
            r("GET", ("payments", "prepare", "{merchant_uid}"), self.get_prepare, "prepare"),
            r("GET", ("payments", "find", "{merchant_uid}"), self.find, "payments"),
            r("GET", ("payments", "find", "{merchant_uid}", "{payment_status}"), self.find, "payments"),
            r("GET", ("payments", "findAll", "{merchant_uid}"), self.find_all, "payments"),
            r(
                "GET",
                ("payments", "findAll", "{merchant_uid}", "{payment_status}"),
                self.find_all,
                "payments",
            ),
            r("GET", ("payments", "status", "{payment_status}"), self.by_status, "payments"),
            r("GET", ("payments",), self.get_payments, "payments"),
            r("GET", ("payments", "{imp_uid}"), self.get_payment, "payments"),
        ]

    def resolve(self, method: str, path: str) -> tuple[Route | None, dict, bool]:
        """(route, path args, path_known). path_known without a route means 405."""
        segments = split_path(path)
        path_known = False
        for route in self.routes:
            args = route.match(segments)
            if args is None:
                continue
            path_known = True
            if route.method == method:
                return route, args, True
        return None, {}, path_known

    # -- auth ---------------------------------------------------------------------------------------------

    def get_token(self, call: Call) -> Answer:
        return Answer(self.ledger.get_token(call.body, call.now))

    # -- billing keys -------------------------------------------------------------------------------------

    def issue_customer(self, call: Call) -> Answer:
        return Answer(self.ledger.issue_key(call.args["customer_uid"], call.body, call.now))

    def get_customer(self, call: Call) -> Answer:
        return Answer(self.ledger.get_key(call.args["customer_uid"]))

    def delete_customer(self, call: Call) -> Answer:
        # `reason` (query or body) is accepted and, as with most PGs, not needed.
        return Answer(self.ledger.delete_key(call.args["customer_uid"]))

    def get_customers(self, call: Call) -> Answer:
        found, missing = self.ledger.get_keys(q_list(call.query, "customer_uid"))
        return _multi(found, missing, "요청하신 customer_uid로 등록된 정보를 찾을 수 없습니다.")

    def customer_payments(self, call: Call) -> Answer:
        return Answer(self.ledger.key_payments(call.args["customer_uid"], call.query))

    def customer_schedules(self, call: Call) -> Answer:
        return Answer(self.ledger.customer_schedules(call.args["customer_uid"], call.query))

    # -- charges ------------------------------------------------------------------------------------------

    def again(self, call: Call) -> Answer:
        payment, notices = self.ledger.again(call.body, call.now)
        return Answer(payment, notices=notices)

    def onetime(self, call: Call) -> Answer:
        payment, notices = self.ledger.onetime(call.body, call.now)
        return Answer(payment, notices=notices)

    # -- schedules ----------------------------------------------------------------------------------------

    def schedule(self, call: Call) -> Answer:
        return Answer(self.ledger.schedule(call.body, call.now))

    def unschedule(self, call: Call) -> Answer:
        return Answer(self.ledger.unschedule(call.body, call.now))

    def get_schedule(self, call: Call) -> Answer:
        return Answer(self.ledger.get_schedule(call.args["merchant_uid"]))

    def update_schedule(self, call: Call) -> Answer:
        return Answer(self.ledger.update_schedule(call.args["merchant_uid"], call.body, call.now))

    def reschedule(self, call: Call) -> Answer:
        return Answer(self.ledger.reschedule(call.args["merchant_uid"], call.body, call.now))

    def retry(self, call: Call) -> Answer:
        payment, notices = self.ledger.retry_schedule(call.args["merchant_uid"], call.now)
        return Answer(payment, notices=notices)

    def list_schedules(self, call: Call) -> Answer:
        return Answer(self.ledger.list_schedules(call.query))

    # -- payments -----------------------------------------------------------------------------------------

    def get_payment(self, call: Call) -> Answer:
        include_sandbox = opt_bool({"v": q_one(call.query, "include_sandbox")}, "v")
        return Answer(self.ledger.get_payment(call.args["imp_uid"], include_sandbox=include_sandbox))

    def get_payments(self, call: Call) -> Answer:
        found, missing = self.ledger.get_payments(q_list(call.query, "imp_uid"), q_list(call.query, "merchant_uid"))
        return _multi(found, missing, MSG_PAYMENT_NOT_FOUND)

    def find(self, call: Call) -> Answer:
        return Answer(self.ledger.find_payment(call.args["merchant_uid"], call.args.get("payment_status"), call.query))

    def find_all(self, call: Call) -> Answer:
        return Answer(
            self.ledger.find_all_payments(call.args["merchant_uid"], call.args.get("payment_status"), call.query)
        )

    def by_status(self, call: Call) -> Answer:
        return Answer(self.ledger.payments_by_status(call.args["payment_status"], call.query, call.now))

    def cancel(self, call: Call) -> Answer:
        payment, notices = self.ledger.cancel(call.body, call.now)
        return Answer(payment, notices=notices)

    def prepare(self, call: Call) -> Answer:
        return Answer(self.ledger.prepare(call.body, update=False))

    def prepare_update(self, call: Call) -> Answer:
        return Answer(self.ledger.prepare(call.body, update=True))

    def get_prepare(self, call: Call) -> Answer:
        return Answer(self.ledger.get_prepare(call.args["merchant_uid"]))
