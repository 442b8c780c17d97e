"""Notifications over the JSON API: your channel for each kind of notification, and the
SMS provider's signed status callback."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

from caretrack.accounts.models import User
from caretrack.core import clock
from caretrack.core.errors import Forbidden, NotFound, ValidationError
from caretrack.http.apikit import PUBLIC, ApiRouter
from caretrack.http.bodies import read_limited
from caretrack.http.clients import address_of
from caretrack.notifications import service, sms
from caretrack.notifications.providers import SIGNATURE_HEADER, STATUS_PATH, provider_for
from caretrack.notifications.schemas import PreferencesOut, PreferencesUpdate, StatusCallbackOut

api = ApiRouter("notifications")
MAX_CALLBACK_BYTES = 16 * 1024


@api.get("/notifications/preferences", summary="Your channel for each kind of notification", roles=None,
         response=PreferencesOut)
async def api_preferences(request: Request, user: User) -> PreferencesOut:
    return await service.preferences_view(user)


@api.put("/notifications/preferences", summary="Choose channels for kinds of notification", roles=None,
         body=PreferencesUpdate, response=PreferencesOut,
         description="The kinds given change, the others keep theirs. Each kind is one your role receives "
                     "(GET lists them); sms and both need a phone number on your profile.")
async def api_set_preferences(request: Request, user: User, body: PreferencesUpdate) -> PreferencesOut:
    await service.do_set_preferences(user, body, address_of(request), at=clock.now(request))
    return await service.preferences_view(user)


@api.post(STATUS_PATH.removeprefix("/api/v1"), summary="SMS provider status callback (signed)", roles=PUBLIC,
          response=StatusCallbackOut, errors=(403, 404, 413, 415, 422),
          description="Called by the SMS provider (Twilio's protocol) with a form body (MessageSid, "
                      "MessageStatus, ErrorCode) and X-Twilio-Signature: base64 HMAC-SHA1 with the auth token "
                      "over this URL (as CARETRACK_BASE_URL spells it) followed by each form field's name and "
                      "value, sorted by name. No session or CSRF token: the signature is the only credential, "
                      "and a missing or wrong one is a 403. A MessageSid we never sent is a 404 (the provider's "
                      "log shows a callback meant for another deployment); 404 too when no provider is "
                      "configured. A status only moves a message forward: a late or repeated callback is "
                      "'ignored'.")
async def api_status_callback(request: Request) -> StatusCallbackOut:
    settings = request.app.state.settings
    provider = provider_for(settings)
    if provider is None:
        raise NotFound("No SMS provider is configured (CARETRACK_SMS_PROVIDER=none).")
    raw = await read_limited(request, MAX_CALLBACK_BYTES, "The status callback")
    url = settings.base_url + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    try:
        params = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw))
    except (UnicodeDecodeError, ValueError):
        params = None
    if params is None or not provider.verify(url, params, request.headers.get(SIGNATURE_HEADER)):
        raise Forbidden("The status callback's X-Twilio-Signature is missing or does not match.")
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type != "application/x-www-form-urlencoded":
        raise ValidationError(f"Expected a form body (application/x-www-form-urlencoded), got "
                              f"'{content_type or 'none'}'.", code="unsupported_media_type", status_code=415)
    form = dict(params)
    missing = [name for name in ("MessageSid", "MessageStatus") if not form.get(name)]
    if missing:
        raise ValidationError("; ".join(f"form field '{m}': required" for m in missing),
                              fields=[{"field": m, "message": "required"} for m in missing])
    changed = await sms.apply_status(form["MessageSid"][:64], form["MessageStatus"][:32], form.get("ErrorCode"))
    if changed is None:
        raise NotFound(f"No text message has the sid '{form['MessageSid'][:64]}'.")
    return StatusCallbackOut(result="updated" if changed else "ignored")
