"""Pages: your notification channels (in the account area), and the admins' outbound list
of every email and text message, with resend."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from caretrack.accounts.models import User
from caretrack.core import clock
from caretrack.core.errors import CareTrackError
from caretrack.core.roles import Role
from caretrack.core.validation import parse_command
from caretrack.http.clients import address_of
from caretrack.http.pagekit import PageRouter, render
from caretrack.notifications import service
from caretrack.notifications.schemas import Channel, OutboundQuery, PreferencesUpdate

pages = PageRouter()
ADMIN = [Role.ADMIN]
CHANNEL_LABELS = {Channel.EMAIL: "Email", Channel.SMS: "Text message (SMS)", Channel.BOTH: "Email and SMS",
                  Channel.NONE: "Off"}


async def _preferences_page(request: Request, user: User, *, status: int = 200,
                            flashes: list[tuple[str, str]] | None = None) -> Response:
    view = await service.preferences_view(user)
    return render(request, "notifications/preferences.html",
                  {"view": view, "channels": CHANNEL_LABELS, "sms_rule": service.SMS_NEEDS_PHONE},
                  status_code=status, flashes=flashes)


@pages.get("/account/notifications", roles=None)
async def preferences_page(request: Request, user: User) -> Response:
    return await _preferences_page(request, user)


@pages.post("/account/notifications", roles=None)
async def preferences_save(request: Request, user: User, form: FormData) -> Response:
    chosen = {kind: str(form.get(kind, "")) for kind in service.kinds_for(user) if form.get(kind) is not None}
    try:
        command = parse_command(PreferencesUpdate, {"preferences": chosen})
        await service.do_set_preferences(user, command, address_of(request), at=clock.now(request))
    except CareTrackError as exc:
        return await _preferences_page(request, user, status=exc.status_code, flashes=[("error", exc.message)])
    return await _preferences_page(request, user, flashes=[("success", "Your notification choices are saved.")])


async def _outbound_page(request: Request, *, status: int = 200,
                         flashes: list[tuple[str, str]] | None = None) -> Response:
    params = dict(request.query_params)
    try:
        query = parse_command(OutboundQuery, params)
    except CareTrackError as exc:
        query, status = OutboundQuery.model_validate({}), exc.status_code
        flashes = [*(flashes or []), ("error", exc.message)]
    listing = await service.outbound(query)
    return render(request, "admin/outbound.html", {"listing": listing, "query": query}, status_code=status,
                  flashes=flashes)


@pages.get("/admin/outbound", roles=ADMIN)
async def outbound_page(request: Request) -> Response:
    return await _outbound_page(request)


@pages.post("/admin/outbound/{channel:str}/{item_id:id}/resend", roles=ADMIN)
async def outbound_resend(request: Request, user: User) -> Response:
    channel, item_id = request.path_params["channel"], request.path_params["item_id"]
    try:
        row = await service.do_resend(user, channel, item_id, address_of(request), at=clock.now(request))
    except CareTrackError as exc:
        return await _outbound_page(request, status=exc.status_code, flashes=[("error", exc.message)])
    what = "Email" if row.channel == "email" else "Text message"
    return await _outbound_page(request, flashes=[("success", f"{what} to {row.to} queued again (#{row.id}).")])
