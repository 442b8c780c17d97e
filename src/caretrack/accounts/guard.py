"""Who is asking, and may they? The middleware identifies the caller once per request
(session cookie or access token); `require_user` is the single check every route runs."""

from __future__ import annotations

from collections.abc import Iterable
from http.cookies import SimpleCookie

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from caretrack.accounts.models import User
from caretrack.accounts.sessions import Authenticated, cookie_name, load_access_token, load_session
from caretrack.core import crypto
from caretrack.core.errors import Forbidden, NotAuthenticated
from caretrack.core.settings import Settings
from caretrack.http.clients import origin_allowed, resolve_client_address
from caretrack.http.guard import MfaRequired
from caretrack.http.pagekit import SAFE_METHODS
from caretrack.http.web_errors import error_response, is_api

CSRF_HEADER = "x-csrf-token"
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


async def identify(scope: Scope, settings: Settings) -> Authenticated | None:
    headers = dict(scope.get("headers") or [])
    authorization = headers.get(b"authorization", b"").decode("latin-1")
    if authorization.lower().startswith("bearer "):
        return await load_access_token(authorization[7:].strip())
    cookie_header = headers.get(b"cookie", b"").decode("latin-1")
    if not cookie_header:
        return None
    cookies = SimpleCookie()
    try:
        cookies.load(cookie_header)
    except Exception:  # a malformed Cookie header is treated as no cookie
        return None
    morsel = cookies.get(cookie_name(settings))
    return await load_session(morsel.value, settings) if morsel else None


class AuthMiddleware:
    """Sets `request.state.auth` (and `.user`, `.session`, `.client_address`). For a
    cookie-authenticated state-changing request, refuses a foreign Origin, and a missing CSRF
    token unless the request is a form post to a page (whose token the page router checks)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["client_address"] = resolve_client_address(scope, self.settings.trusted_proxies)
        auth = await identify(scope, self.settings)
        state["auth"] = auth
        state["user"] = auth.user if auth else None
        state["session"] = auth.session if auth else None
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS and auth and auth.via_cookie:
            problem = csrf_problem(scope, auth, self.settings)
            if problem:
                await error_response(scope, 403, "csrf_failed", problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def csrf_problem(scope: Scope, auth: Authenticated, settings: Settings) -> str | None:
    if not origin_allowed(scope, settings):
        return "This request came from another site (its Origin is not allowed)."
    headers = dict(scope.get("headers") or [])
    token = headers.get(CSRF_HEADER.encode(), b"").decode("latin-1")
    content_type = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip()
    if token:
        return None if csrf_matches(auth, token) else "The CSRF token does not match this session."
    if content_type in FORM_TYPES and not is_api(scope):
        # Only pages read forms, and their router checks the form's token before the handler
        # runs; an API operation never reads a form, so it must carry the header.
        scope["state"]["csrf_form_pending"] = True
        return None
    return f"A state-changing request needs the {CSRF_HEADER} header."


def csrf_matches(auth: Authenticated, token: str) -> bool:
    return auth.session is not None and crypto.same_secret(token, auth.session.csrf_token)


async def require_user(
    request: HTTPConnection, roles: Iterable[str] | None, *, allow_pending_mfa: bool = False
) -> User:
    """The one authorisation check: signed in, second factor done where the role needs it,
    and a role the route allows."""
    auth: Authenticated | None = request.state.auth
    if auth is None:
        raise NotAuthenticated("Sign in to continue.")
    user = auth.user
    if user.needs_mfa and not allow_pending_mfa and auth.via_cookie:
        if user.totp_enrolled_at is None:
            raise MfaRequired(enrolled=False)
        if not auth.session.mfa_verified:
            raise MfaRequired(enrolled=True)
    if user.needs_mfa and auth.token is not None and user.totp_enrolled_at is None:
        raise MfaRequired(enrolled=False)
    if roles is not None and user.role not in roles:
        raise Forbidden(f"This is for {', '.join(sorted(roles))} accounts.")
    return user
