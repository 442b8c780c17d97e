"""One place that renders errors: JSON `{"error": {"code", "message"}}` under /api/,
an HTML page everywhere else. No traceback ever reaches a user."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from caretrack.core.errors import CareTrackError
from caretrack.http.templating import templates

_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def is_api(scope: Scope) -> bool:
    """Under /api/: the JSON API, which answers errors in JSON, reads no forms and is never cached."""
    return scope["path"].startswith("/api/")


def error_response(
    scope: Scope, status: int, code: str, message: str, headers: dict[str, str] | None = None,
    fields: list[dict[str, str]] | None = None,
) -> Response:
    if is_api(scope):
        error: dict[str, object] = {"code": code, "message": message}
        if fields:
            error["fields"] = fields
        return JSONResponse({"error": error}, status, headers=headers)
    request = Request(scope)
    return templates.TemplateResponse(
        request,
        "error.html",
        {"status": status, "code": code, "message": message},
        status_code=status,
        headers=headers,
    )


def internal_error_response(scope: Scope, request_id: str) -> Response:
    return error_response(
        scope,
        500,
        "internal_error",
        f"Something went wrong on our side. If it keeps happening, quote request id {request_id}.",
    )


DATABASE_RETRY_AFTER_SECONDS = 5


def database_unavailable_response(scope: Scope) -> Response:
    """503 while the database cannot be reached: the request may be retried once it is back."""
    return error_response(
        scope,
        503,
        "database_unavailable",
        "The service cannot reach its database just now, so this request was not completed. "
        f"Try again in a few seconds (Retry-After: {DATABASE_RETRY_AFTER_SECONDS}).",
        headers={"retry-after": str(DATABASE_RETRY_AFTER_SECONDS), "cache-control": "no-store"},
    )


async def handle_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CareTrackError)
    return error_response(request.scope, exc.status_code, exc.code, exc.message, fields=getattr(exc, "fields", None))


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    code = _HTTP_CODES.get(exc.status_code, "error")
    detail = exc.detail if isinstance(exc.detail, str) else code
    return error_response(request.scope, exc.status_code, code, detail, headers=exc.headers)


EXCEPTION_HANDLERS = {
    CareTrackError: handle_domain_error,
    HTTPException: handle_http_exception,
}
