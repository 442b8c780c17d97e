"""Domain errors carry their HTTP status; one handler renders them (HTML or JSON)."""

from __future__ import annotations


class CareTrackError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code


class ValidationError(CareTrackError):
    """Bad input; `fields` names each wrong field once: `[{"field": "a.b", "message": ...}]`."""

    status_code = 422
    code = "invalid"

    def __init__(self, message: str, *, fields: list[dict[str, str]] | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.fields = fields or []


class NotAuthenticated(CareTrackError):
    status_code = 401
    code = "not_authenticated"


class Forbidden(CareTrackError):
    status_code = 403
    code = "forbidden"


class NotFound(CareTrackError):
    status_code = 404
    code = "not_found"


class Conflict(CareTrackError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(CareTrackError):
    status_code = 413
    code = "too_large"


class RateLimited(CareTrackError):
    status_code = 429
    code = "rate_limited"


class ServiceUnavailable(CareTrackError):
    status_code = 503
    code = "unavailable"
