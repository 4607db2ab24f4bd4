"""The one exception type the sandbox raises to answer an Iamport-style error envelope."""


class ApiError(Exception):
    """An Iamport answer other than success: an HTTP status plus the `{code, message, response}` envelope."""

    def __init__(self, message: str, *, code: int = 1, http_status: int = 200, response=None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.response = response

    def envelope(self) -> dict:
        return {"code": self.code, "message": self.message, "response": self.response}


def bad_request(message: str) -> ApiError:
    # Iamport answers parameter problems with HTTP 400 *and* a JSON envelope (docs/iamport-v1.md#envelope).
    return ApiError(message, code=1, http_status=400)


def not_found(message: str) -> ApiError:
    return ApiError(message, code=1, http_status=404)


def business_error(message: str) -> ApiError:
    # PortOne-side refusals come back as HTTP 200 with code 1 (docs/iamport-v1.md#error-codes-and-messages).
    return ApiError(message, code=1, http_status=200)


def pg_error(message: str) -> ApiError:
    # Card-company / PG-side failures during card auth: HTTP 200 with code -1
    # (docs/iamport-v1.md#error-codes-and-messages).
    return ApiError(message, code=-1, http_status=200)
