"""Consultations over the JSON API and WebSocket: /ws/signal (the signalling library driving
the in-process media relay, or the proxy to media workers), chat history, the doctor's
notes, recordings and guest invitations. The pages live in consultations/pages.py."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

import media
from caretrack.accounts.guard import identify
from caretrack.consultations import service
from caretrack.consultations.cluster import RedisDirectory
from caretrack.consultations.schemas import (
    ChatHistory,
    ChatItem,
    GuestInviteCreate,
    GuestInviteLink,
    Notes,
    RecordingItem,
    RecordingList,
)
from caretrack.core import clock
from caretrack.core.settings import Settings
from caretrack.http.apikit import ApiRouter
from caretrack.http.clients import origin_allowed
from signalling import Principal, SignallingService
from signalling.proxy import SignallingProxy

api = ApiRouter("consultations")


async def start(app) -> None:
    settings: Settings = app.state.settings

    async def authenticate(websocket: WebSocket) -> Principal | None:
        auth = websocket.state.auth if hasattr(websocket.state, "auth") else await identify(websocket.scope, settings)
        if auth is None:
            return None
        user = auth.user
        if user.needs_mfa and (user.totp_enrolled_at is None or (auth.session and not auth.session.mfa_verified)):
            return None
        return Principal(str(user.id), user.full_name)

    def allowed_origin(websocket: WebSocket) -> bool:
        return origin_allowed(websocket.scope, settings)

    if settings.media_mode == "workers":  # `caretrack media` processes host the calls
        app.state.media_relay = None
        app.state.media_directory = RedisDirectory(app.state.redis)
        app.state.signalling = SignallingProxy(
            app.state.media_directory, ticket_key=settings.media_ticket_key, authenticate=authenticate,
            allowed_origin=allowed_origin, authorize=service.make_authorize(settings))
        return
    relay = media.Relay(service.relay_config(settings))
    app.state.media_relay = relay
    app.state.media_directory = None
    app.state.signalling = SignallingService(
        relay, authenticate=authenticate, allowed_origin=allowed_origin,
        authorize=service.make_authorize(settings), hooks=service.CallHooks(settings),
    )


async def drain(app) -> None:
    """Every call's sockets are closed with 1012 (restarting): clients reconnect at once."""
    await app.state.signalling.close()


async def stop(app) -> None:
    await app.state.signalling.close()
    if app.state.media_relay is not None:
        await app.state.media_relay.close()


async def signal(websocket: WebSocket) -> None:
    await websocket.app.state.signalling.endpoint(websocket)


routes = [WebSocketRoute("/ws/signal", signal, name="signal")]


def _settings(request: Request) -> Settings:
    return request.app.state.settings


@api.get("/consultations/{appointment_id:id}/chat", summary="The consultation's chat", roles=None,
         response=ChatHistory, errors=(404,))
async def api_chat(request: Request, user) -> ChatHistory:
    items = await service.chat_history(_settings(request), user, request.path_params["appointment_id"])
    return ChatHistory(messages=[ChatItem(**item) for item in items])


@api.get("/consultations/{appointment_id:id}/notes", summary="The doctor's notes (doctor only)", roles=None,
         response=Notes, errors=(404,))
async def api_notes(request: Request, user) -> Notes:
    return Notes(text=await service.read_notes(_settings(request), user, request.path_params["appointment_id"]))


@api.route("PUT", "/consultations/{appointment_id:id}/notes", summary="Save the doctor's notes (doctor only)",
           roles=None, body=Notes, response=Notes, errors=(404,))
async def api_save_notes(request: Request, user, body: Notes) -> Notes:
    await service.do_save_notes(_settings(request), user, request.path_params["appointment_id"], body.text)
    return body


@api.get("/consultations/{appointment_id:id}/recordings", summary="Recordings (doctor only)", roles=None,
         response=RecordingList, errors=(404,))
async def api_recordings(request: Request, user) -> RecordingList:
    appointment_id = request.path_params["appointment_id"]
    recordings = await service.list_recordings(_settings(request), user, appointment_id)
    return RecordingList(recordings=[RecordingItem(
        id=r.id, size_bytes=r.size_bytes, started_at=r.started_at, stopped_at=r.stopped_at,
        download_url=f"/consultations/{appointment_id}/recordings/{r.id}") for r in recordings])


@api.post("/consultations/{appointment_id:id}/guest-invites", summary="A single-use link for a guest (doctor only)",
          roles=None, body=GuestInviteCreate, response=GuestInviteLink, status=201, errors=(404,))
async def api_guest_invite(request: Request, user, body: GuestInviteCreate) -> GuestInviteLink:
    link = await service.do_create_guest_invite(_settings(request), user, request.path_params["appointment_id"],
                                                body.label, at=clock.now(request))
    return GuestInviteLink(link=link)
