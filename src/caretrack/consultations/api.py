"""Consultations over the JSON API: chat history, the doctor's notes, recordings and guest
invitations. The pages live in consultations/pages.py; /ws/signal and the relay are wired in
by site/calls.py."""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request

from caretrack.accounts.models import User
from caretrack.consultations import guests, service
from caretrack.consultations.models import GuestInvite
from caretrack.consultations.schemas import (
    ChatHistory,
    ChatItem,
    GuestInviteCreate,
    GuestInviteItem,
    GuestInviteLink,
    GuestInviteList,
    Notes,
    RecordingItem,
    RecordingList,
)
from caretrack.core import clock
from caretrack.core.settings import Settings
from caretrack.http.apikit import ApiRouter

api = ApiRouter("consultations")


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


def _invite_item(invite: GuestInvite, at: datetime) -> GuestInviteItem:
    return GuestInviteItem(id=invite.id, role=invite.role, label=invite.label, status=guests.status_of(invite, at),
                           created_at=invite.created_at, expires_at=invite.expires_at,
                           display_name=invite.display_name, admitted_at=invite.admitted_at)


@api.post("/consultations/{appointment_id:id}/guest-invites", summary="A single-use link for a guest (doctor only)",
          roles=None, body=GuestInviteCreate, response=GuestInviteLink, status=201, errors=(404,))
async def api_guest_invite(request: Request, user: User, body: GuestInviteCreate) -> GuestInviteLink:
    at = clock.now(request)
    invite, link = await guests.do_create_guest_invite(_settings(request), user, request.path_params["appointment_id"],
                                                       body, at=at)
    return GuestInviteLink(link=link, **_invite_item(invite, at).model_dump())


@api.get("/consultations/{appointment_id:id}/guest-invites", summary="The guest links (doctor only)", roles=None,
         response=GuestInviteList, errors=(404,))
async def api_guest_invites(request: Request, user: User) -> GuestInviteList:
    at = clock.now(request)
    invites = await guests.list_guest_invites(_settings(request), user, request.path_params["appointment_id"])
    return GuestInviteList(invites=[_invite_item(invite, at) for invite in invites])


@api.delete("/consultations/{appointment_id:id}/guest-invites/{invite_id:id}",
            summary="Revoke a guest link: it no longer opens, and its guest cannot join again (doctor only)",
            roles=None, response=GuestInviteItem, errors=(404,))
async def api_revoke_guest_invite(request: Request, user: User) -> GuestInviteItem:
    at = clock.now(request)
    invite = await guests.do_revoke_guest_invite(_settings(request), user, request.path_params["appointment_id"],
                                                 request.path_params["invite_id"], at=at)
    return _invite_item(invite, at)
