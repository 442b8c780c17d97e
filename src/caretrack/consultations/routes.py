"""Consultations over HTTP and WebSocket: the call page, /ws/signal (the signalling library
driving the in-process media relay), chat history, the doctor's notes, recordings and
guest invitations."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

import media
from caretrack.accounts.guard import identify
from caretrack.consultations import service
from caretrack.consultations.cluster import RedisDirectory
from caretrack.core import clock
from caretrack.core.errors import CareTrackError
from caretrack.core.settings import Settings
from caretrack.http.apikit import ApiRouter
from caretrack.http.clients import origin_allowed
from caretrack.http.pagekit import PageRouter, redirect, render
from signalling import Principal, SignallingService
from signalling.proxy import SignallingProxy

api = ApiRouter("consultations")
pages = PageRouter()


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


# --- pages -------------------------------------------------------------------------------


@pages.get("/consultations/{appointment_id:id}", roles=None)
async def call_page(request: Request, user) -> Response:
    settings = _settings(request)
    access = await service.access_for(settings, user, request.path_params["appointment_id"])
    appointment = access.appointment
    await appointment.fetch_related("doctor", "patient")
    return render(request, "consultations/call.html", {
        "access": access, "appointment": appointment, "closed_reason": access.closed_reason(clock.now(request)),
        "user": user,
    })


@pages.get("/consultations/guest", roles=None)
async def guest_page(request: Request) -> Response:
    return render(request, "consultations/guest.html")


@pages.post("/consultations/guest", roles=None)
async def guest_redeem(request: Request, user, form) -> Response:
    try:
        appointment_id = await service.do_redeem_guest_invite(user, str(form.get("token", "")), at=clock.now(request))
    except CareTrackError as exc:
        return render(request, "consultations/guest.html", status_code=exc.status_code,
                      flashes=[("error", exc.message)])
    return redirect(f"/consultations/{appointment_id}")


@pages.get("/consultations/{appointment_id:id}/recordings/{recording_id:id}", roles=None)
async def download_recording(request: Request, user) -> Response:
    recording, chunks = await service.open_recording(_settings(request), user, request.path_params["appointment_id"],
                                                     request.path_params["recording_id"])
    return StreamingResponse(chunks, media_type="video/webm", headers={
        "content-disposition": f'attachment; filename="consultation-{recording.appointment_id}-{recording.id}.webm"',
    })


# --- JSON API ------------------------------------------------------------------------------


class ChatItem(BaseModel):
    id: int
    at: datetime
    name: str
    participant: str
    text: str


class ChatHistory(BaseModel):
    messages: list[ChatItem]


class Notes(BaseModel):
    text: str = Field(max_length=20000)


class RecordingItem(BaseModel):
    id: int
    size_bytes: int
    started_at: datetime
    stopped_at: datetime
    download_url: str


class RecordingList(BaseModel):
    recordings: list[RecordingItem]


class GuestInviteCreate(BaseModel):
    label: str = Field(min_length=1, max_length=100)


class GuestInviteLink(BaseModel):
    link: str = Field(description="Single-use; the token is in the fragment and never reaches a server log.")


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
