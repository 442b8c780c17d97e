"""HTML pages: one decorator declares a page's roles; signed-out visitors are sent to the
login page, doctors and admins to their second factor, and every form post has its Origin
(signed in or not) and CSRF token checked before the handler runs.

    pages = PageRouter()

    @pages.post("/account", roles=None)
    async def save_account(request, user, form): ...
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast
from urllib.parse import quote

from pydantic import BaseModel
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from caretrack.core import crypto
from caretrack.core import validation as bounds
from caretrack.core.errors import CareTrackError, Forbidden, NotAuthenticated
from caretrack.http.apikit import PUBLIC, parse_model, validation_error
from caretrack.http.bodies import read_limited
from caretrack.http.clients import origin_allowed
from caretrack.http.guard import MfaRequired, require_user
from caretrack.http.templating import templates

Handler = Callable[..., Awaitable[Response]]
MAX_FORM_BYTES = 1024 * 1024
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def render(request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200,
           *, flashes: list[tuple[str, str]] | None = None, errors: Mapping[str, str] | None = None) -> Response:
    """`errors` ({field: message}) are shown beside their inputs by the templates' `field_error`."""
    return templates.TemplateResponse(request, template, {**(context or {}), "flashes": flashes or [],
                                                          "field_errors": dict(errors or {})},
                                      status_code=status_code)


def field_problems(exc: CareTrackError) -> dict[str, str]:
    """Each wrong field's message ({form field: sentence}), from ValidationError.fields."""
    return {str(item["field"]): str(item["message"]) for item in getattr(exc, "fields", None) or []}


def problem_flashes(exc: CareTrackError) -> list[tuple[str, str]]:
    """Every problem of a refused form, one line each (not only the first), for the page's flashes."""
    messages = list(dict.fromkeys(field_problems(exc).values()))
    return [("error", message) for message in messages] or [("error", exc.message)]


def refused(request: Request, template: str, exc: CareTrackError, context: dict[str, Any] | None = None) -> Response:
    """A form's page again after `exc`: every problem listed at once, and each beside its field."""
    return render(request, template, context, status_code=exc.status_code, flashes=problem_flashes(exc),
                  errors=field_problems(exc))


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def read_form(request: Request, max_bytes: int = MAX_FORM_BYTES) -> FormData:
    """The form, read with a size limit, after its CSRF token is checked (when the
    middleware left that to us)."""
    await read_limited(request, max_bytes, "The form")
    form = await request.form(max_files=5, max_fields=200, max_part_size=max_bytes)
    if request.state._state.get("csrf_form_pending"):
        token = str(form.get("csrf_token", ""))
        session = request.state.session
        if not token or session is None or not crypto.same_secret(token, session.csrf_token):
            await form.close()
            raise Forbidden("This form has expired or came from another site; reload the page and try again.")
    # The API's rule, for forms too: no field has a use for NUL, and PostgreSQL refuses it in text.
    refused = {name: bounds.NUL_MESSAGE for name, value in form.multi_items()
               if bounds.unstorable(name) or (isinstance(value, str) and bounds.unstorable(value))}
    if refused:
        await form.close()
        raise validation_error(refused, "form field")
    return form


Command = TypeVar("Command", bound=BaseModel)


def parse_form(model: type[Command], data: Mapping[str, Any]) -> Command:
    """A form's fields parsed into the command the API takes: a 422 naming each wrong field."""
    return cast(Command, parse_model(model, dict(data), "form field"))


def check_form_origin(request: Request) -> None:
    """Every page form must come from our own pages, signed in or not: a sign-in or sign-up
    form posted from another site would sign the victim into the attacker's account (login
    CSRF). Browsers send Origin with every form post; Referer is the fallback."""
    settings = request.app.state.settings
    if not origin_allowed(request.scope, settings):
        raise Forbidden(f"This form was sent from another site, or without an Origin header; open it on "
                        f"{settings.base_url} and send it from there.")


@dataclass
class PageRouter:
    routes: list[Route] = field(default_factory=list)

    def route(self, methods: list[str], path: str, *, roles: Iterable[str] | None,
              allow_pending_mfa: bool = False, max_body: int = MAX_FORM_BYTES) -> Callable[[Handler], Handler]:
        allowed = None if roles is None else frozenset(roles)

        def decorate(handler: Handler) -> Handler:
            params = inspect.signature(handler).parameters

            async def endpoint(request: Request) -> Response:
                unsafe = request.method not in SAFE_METHODS
                if unsafe:
                    check_form_origin(request)
                kwargs: dict[str, Any] = {}
                if allowed != PUBLIC:
                    try:
                        user = await require_user(request, allowed, allow_pending_mfa=allow_pending_mfa)
                    except NotAuthenticated:
                        return redirect(f"/login?next={quote(request.url.path)}")
                    except MfaRequired as exc:
                        return redirect("/mfa/verify" if exc.enrolled else "/mfa/setup")
                    if "user" in params:
                        kwargs["user"] = user
                elif "user" in params:
                    kwargs["user"] = request.state.user
                if "form" in params:
                    kwargs["form"] = await read_form(request, max_body)
                elif unsafe and request.state._state.get("csrf_form_pending"):
                    await (await read_form(request, max_body)).close()  # only for its token check
                return await handler(request, **kwargs)

            endpoint.__name__ = handler.__name__
            self.routes.append(Route(path, endpoint, methods=methods, name=handler.__name__))
            return handler

        return decorate

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route(["GET"], path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route(["POST"], path, **kw)


def download(chunks: Iterable[bytes], media_type: str, filename: str) -> StreamingResponse:
    """A file streamed as a download, never shown inline: Content-Disposition `attachment`
    with the name (RFC 5987 when it is not plain ASCII, as Starlette's FileResponse writes it)
    and nosniff, so a browser never renders what a user uploaded."""
    quoted = quote(filename)
    disposition = (f"attachment; filename*=utf-8''{quoted}" if quoted != filename
                   else f'attachment; filename="{filename}"')
    return StreamingResponse(iter(chunks), media_type=media_type,
                             headers={"content-disposition": disposition, "x-content-type-options": "nosniff"})
