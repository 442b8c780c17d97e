"""The session guard's seam. The HTTP floor checks "who is asking" on every route, but the
check itself (sessions, tokens, second factor) belongs to accounts, above this floor: site
installs it on the app (`install`), and the routers call `require_user`."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from caretrack.core.errors import CareTrackError


class MfaRequired(CareTrackError):
    """Signed in, but the second factor is still to be enrolled or entered."""

    status_code = 403
    code = "mfa_required"

    def __init__(self, enrolled: bool) -> None:
        super().__init__(
            "Enter your two-factor code to continue." if enrolled
            else "Set up two-factor authentication to continue."
        )
        self.enrolled = enrolled


class Guard(Protocol):
    def __call__(self, request: HTTPConnection, roles: Iterable[str] | None, *,
                 allow_pending_mfa: bool = False) -> Awaitable[Any]: ...


def install(app: Starlette, guard: Guard) -> None:
    app.state.guard = guard


async def require_user(request: HTTPConnection, roles: Iterable[str] | None, *,
                       allow_pending_mfa: bool = False) -> Any:
    """The signed-in user if the installed guard lets them through (NotAuthenticated,
    MfaRequired or Forbidden otherwise)."""
    guard: Guard = request.app.state.guard
    return await guard(request, roles, allow_pending_mfa=allow_pending_mfa)
