"""One consultation's live state: who is connected, who waits, who is admitted, the
relay room, recording consents and the recording itself.

Recording runs only while everyone admitted and connected (guests included) has consented:
it stops when anyone withdraws and when someone who has not consented is admitted.

Only admitted members get a relay participant (``room.join``): a waiting patient or
guest never reaches media.  An admitted, connected member is *in the call*: the host
application is told when each such stay starts and ends (``Hooks.on_join``/``on_leave``).
State changes that span members run under one lock per consultation; relay SDP work runs
under the relay's own per-participant locks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel

import media

from . import protocol as p
from .policy import Hooks, Limits, Principal, Role, Seat

logger = logging.getLogger(__name__)


class Socket(Protocol):
    """A member's signalling socket, as the consultation uses it (``session.Session``)."""

    principal: Principal

    def send(self, message: BaseModel) -> None: ...

    def close_soon(self, code: int, reason: str) -> None: ...


class Registry(Protocol):
    """The service that keeps this process's live consultations, as a consultation uses it
    (``service.SignallingService``): what it is configured with, and the two changes a
    consultation reports back."""

    relay: media.Relay
    hooks: Hooks
    limits: Limits

    def ice_servers_for(self, principal: Principal) -> list[p.IceServerInfo]: ...

    def forget(self, consultation: Consultation) -> None:
        """The consultation is over in this process (nobody is connected, it ended, or it
        was evicted): the next join for its id starts a new :class:`Consultation`."""

    def mark_ended(self, consultation_id: str) -> None:
        """Its host ended it: nobody may join it again while this process runs."""


@dataclass(eq=False)
class Member:
    principal: Principal
    role: Role
    session: Socket | None = None
    admitted: bool = False
    participant: media.Participant | None = None
    fresh_socket: bool = True  # the next offer builds (or rebuilds) the relay connection
    audio: bool = True
    video: bool = True
    screen: bool = False
    screen_track: str | None = None  # the shared screen's track id, as the member said
    stay: str | None = None  # while in the call: the id Hooks.on_join gave this stay
    pump: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def id(self) -> str:
        return self.principal.id

    @property
    def connected(self) -> bool:
        return self.session is not None

    def send(self, message: BaseModel) -> None:
        if self.session is not None:
            self.session.send(message)


class Consultation:
    def __init__(self, service: Registry, consultation_id: str) -> None:
        self.service = service
        self.id = consultation_id
        self.members: dict[str, Member] = {}  # insertion order = arrival order
        self.consents: dict[str, bool] = {}  # by participant id; kept across reconnects
        self.recording_path: Path | None = None
        self.ended = False
        self.lock = asyncio.Lock()
        self._room: media.Room | None = None
        self._recordings = 0

    def __repr__(self) -> str:
        return f"Consultation({self.id})"

    @property
    def room(self) -> media.Room:
        if self.ended:
            raise p.ProtocolError(p.CLOSE_CLOSED, "this consultation has ended")
        if self._room is None or self._room.closed:
            self._room = self.service.relay.room(self.id)
        return self._room

    def _connected(self, *, admitted: bool | None = None) -> list[Member]:
        return [m for m in self.members.values()
                if m.connected and (admitted is None or m.admitted == admitted)]

    # --- arrival and departure ------------------------------------------------------------

    async def attach(self, session: Socket, principal: Principal, seat: Seat) -> None:
        """A socket joined: replace the user's older socket, seat them, tell everyone."""
        role = seat.role
        async with self.lock:
            if self.ended:
                raise p.ProtocolError(p.CLOSE_CLOSED, "this consultation has ended")
            member = self.members.get(principal.id)
            admitted = role == "host" or seat.admitted or (member is not None and member.admitted)
            stay = None
            if admitted and (member is None or member.stay is None):  # not a socket replacing another
                stay = await self._joined(principal, role)
            if member is None:
                member = self.members[principal.id] = Member(principal, role)
            elif member.session is not None:
                logger.info("%s: %s reconnected; closing the older socket", self, principal.id)
                member.session.close_soon(p.CLOSE_REPLACED, "replaced by a newer connection")
            member.role = role
            member.principal = principal
            member.session = session
            member.fresh_socket = True
            if role == "host" or seat.admitted:
                member.admitted = True
            if stay is not None:
                member.stay = stay
            session.send(p.Welcome(
                consultation=self.id, participant=principal.id, name=principal.name, role=role,
                admitted=member.admitted, ice_servers=self.service.ice_servers_for(principal),
                max_message_bytes=self.service.limits.max_message_bytes,
            ))
            if member.admitted:
                self._announce_participants()
                if not await self._update_recording():
                    self.broadcast(self._recording_state())
            else:
                session.send(p.Waiting(host_present=self._host_present()))
                await self._arrived(principal, role)
            self._announce_lobby()
            if role == "host":
                self._announce_host_presence()

    async def detach(self, session: Socket) -> None:
        """A socket ended.  A replaced socket changes nothing; otherwise the member leaves
        the relay room (their relay connection dies with the socket) and the waiting list."""
        async with self.lock:
            member = self.members.get(session.principal.id)
            if member is None or member.session is not session:
                return
            member.session = None
            await self._leave_media(member)
            await self._left(member)
            if not member.admitted:
                del self.members[member.id]
            self._announce_participants()
            self._announce_lobby()
            if member.role == "host":
                self._announce_host_presence()
            if not any(m.connected for m in self.members.values()):
                await self._shut()
            elif member.admitted and not await self._update_recording():
                self.broadcast(self._recording_state())

    async def _leave_media(self, member: Member) -> None:
        if member.participant is None:
            return
        if self.recording_path is not None and member.role in ("host", "patient"):
            await self._stop_recording()
        member.participant = None
        if self._room is not None:
            await self._room.leave(member.id)
        if member.pump is not None:
            await asyncio.gather(member.pump, return_exceptions=True)
            member.pump = None
        member.screen, member.screen_track = False, None

    async def _shut(self) -> None:
        """Nobody is connected any more: stop recording, close the room, forget it all."""
        if self.recording_path is not None:
            await self._stop_recording()
        if self._room is not None:
            await self._room.close()
        self.service.forget(self)

    # --- waiting room ---------------------------------------------------------------------

    async def admit(self, host: Member, participant_id: str) -> None:
        async with self.lock:
            member = self.members.get(participant_id)
            if member is None or member.admitted or not member.connected:
                raise p.ProtocolError(p.CLOSE_MALFORMED, f"nobody with id {participant_id[:64]!r} is waiting")
            await self.service.hooks.on_admit(self.id, host.principal, member.principal)
            member.stay = await self.service.hooks.on_join(self.id, member.principal, member.role)
            member.admitted = True
            logger.info("%s: %s admitted %s", self, host.id, member.id)
            member.send(p.Admitted())
            self._announce_participants()
            self._announce_lobby()
            if not await self._update_recording():  # a recording stops for someone who has not consented
                self.broadcast(self._recording_state())

    async def _joined(self, principal: Principal, role: Role) -> str:
        """Tell the host application a stay in the call starts; if it cannot record that, the
        member does not get in (their client reconnects and tries again)."""
        try:
            return await self.service.hooks.on_join(self.id, principal, role)
        except Exception:
            logger.exception("%s: on_join failed for %s", self, principal.id)
            if not any(m.connected for m in self.members.values()):
                self.service.forget(self)  # as after the last one leaves: nothing lingers
            raise p.ProtocolError(p.CLOSE_TRY_AGAIN, "the server could not record that you joined; "
                                  "reconnecting") from None

    async def _arrived(self, principal: Principal, role: Role) -> None:
        """Tell the host application someone waits to be let in (a failure is logged: they
        wait either way)."""
        try:
            await self.service.hooks.on_arrive(self.id, principal, role)
        except Exception:
            logger.exception("%s: on_arrive failed for %s", self, principal.id)

    async def _left(self, member: Member) -> None:
        """The member's stay is over (they are gone either way: a failure is logged)."""
        stay, member.stay = member.stay, None
        if stay is None:
            return
        try:
            await self.service.hooks.on_leave(self.id, member.principal, stay)
        except Exception:
            logger.exception("%s: on_leave failed for %s", self, member.id)

    def _host_present(self) -> bool:
        return any(m.role == "host" for m in self._connected())

    def _announce_lobby(self) -> None:
        lobby = p.Lobby(waiting=[
            p.WaitingPerson(participant=m.id, name=m.principal.name, role=m.role)
            for m in self._connected(admitted=False)
        ])
        for member in self._connected(admitted=True):
            if member.role == "host":
                member.send(lobby)

    def _announce_host_presence(self) -> None:
        waiting = p.Waiting(host_present=self._host_present())
        for member in self._connected(admitted=False):
            member.send(waiting)

    def _announce_participants(self) -> None:
        present = self._connected(admitted=True)
        message = p.Participants(participants=[
            p.ParticipantInfo(participant=m.id, name=m.principal.name, role=m.role,
                              audio=m.audio, video=m.video, screen=m.screen, screen_track=m.screen_track)
            for m in present
        ])
        for member in present:
            member.send(message)

    def broadcast(self, message: BaseModel, *, exclude: Member | None = None) -> None:
        """To every admitted, connected member."""
        for member in self._connected(admitted=True):
            if member is not exclude:
                member.send(message)

    # --- media ----------------------------------------------------------------------------

    async def offer(self, member: Member, sdp: str) -> None:
        """The member's offer: the first one on a socket joins (or rebuilds) their relay
        connection; later ones renegotiate it."""
        if member.participant is None or member.fresh_socket:
            participant = await self.room.join(member.id, sdp)
            member.fresh_socket = False
            if member.participant is not participant:
                member.participant = participant
                member.pump = asyncio.create_task(self._pump(member, participant))
        else:
            await member.participant.handle_offer(sdp)
        async with self.lock:
            await self._update_recording()

    async def _pump(self, member: Member, participant: media.Participant) -> None:
        """The relay's SDP for this member, in order, to whichever socket is theirs now."""
        async for message in participant.messages():
            if message["type"] == "answer":
                member.send(p.RelayAnswer(sdp=message["sdp"]))
            else:
                member.send(p.RelayOffer(sdp=message["sdp"], tracks={
                    mid: p.TrackInfo(**info) for mid, info in message["tracks"].items()
                }))

    # --- recording ------------------------------------------------------------------------

    def _recording_state(self) -> p.Recording:
        def consented(role: Role) -> bool:
            return any(self.consents.get(m.id, False) for m in self.members.values() if m.role == role)

        return p.Recording(on=self.recording_path is not None,
                           consents=p.Consents(host=consented("host"), patient=consented("patient")),
                           missing=[p.Person(participant=m.id, name=m.principal.name)
                                    for m in self._connected(admitted=True) if not self.consents.get(m.id, False)])

    async def consent(self, member: Member, granted: bool) -> None:
        async with self.lock:
            await self.service.hooks.on_recording_consent(self.id, member.principal, member.role, granted)
            self.consents[member.id] = granted
            if not await self._update_recording():
                self.broadcast(self._recording_state())

    def _should_record(self) -> bool:
        present = self._connected(admitted=True)
        if self.ended or not all(self.consents.get(m.id, False) for m in present):
            return False
        publishing = {m.role for m in present if m.participant is not None and m.participant.publications}
        return {"host", "patient"} <= publishing

    async def _update_recording(self) -> bool:
        """Start or stop recording to match consents and who is publishing (under lock);
        True when it changed (and everyone was told)."""
        if self._should_record() and self.recording_path is None:
            self._recordings += 1
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            path = self.service.relay.config.recordings_dir / self.id / f"{stamp}-{self._recordings}.webm"
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                await self.room.start_recording(path)
            except media.RelayError as exc:
                logger.warning("%s: recording did not start: %s", self, exc)
                return False
            self.recording_path = path
            logger.info("%s: recording to %s", self, path)
            await self._call_hook(self.service.hooks.on_recording_started, path)
            self.broadcast(self._recording_state())
            return True
        if not self._should_record() and self.recording_path is not None:
            await self._stop_recording()
            return True
        return False

    async def _stop_recording(self) -> None:
        path, self.recording_path = self.recording_path, None
        if path is None:
            return
        try:
            if self._room is None:  # pragma: no cover - a recording runs in the room
                raise media.RelayError(f"{self} has no relay room")
            frames = await self._room.stop_recording()
            logger.info("%s: recording %s stopped: %s", self, path, frames)
        except media.RelayError as exc:
            logger.warning("%s: stopping the recording failed: %s", self, exc)
        await self._call_hook(self.service.hooks.on_recording_stopped, path)
        self.broadcast(self._recording_state())

    async def _call_hook(self, hook: Callable[[str, Path], Awaitable[None]], path: Path) -> None:
        try:
            await hook(self.id, path)
        except Exception:
            logger.exception("%s: %s failed for %s", self, getattr(hook, "__name__", hook), path)

    # --- the end --------------------------------------------------------------------------

    async def end(self, by: Principal, reason: str) -> None:
        """The host ends the consultation for everyone.  The hook persists that first; if
        it fails nothing changes.  Nobody joins an ended consultation."""
        async with self.lock:
            if self.ended:
                return
            await self.service.hooks.on_end(self.id, by)
            self.service.mark_ended(self.id)
            await self._dissolve(p.Ended(reason=reason), p.CLOSE_NORMAL, reason)

    async def evict(self, code: int, reason: str) -> None:
        """Close every socket without ending the consultation, so that clients reconnect:
        the server restarts, or the call moves to another media worker."""
        async with self.lock:
            if not self.ended:
                await self._dissolve(p.Error(code=code, message=reason), code, reason)

    async def _dissolve(self, farewell: BaseModel, code: int, reason: str) -> None:
        """Stop recording, close the relay room, forget this object, close every socket."""
        if self.recording_path is not None:
            await self._stop_recording()
        self.ended = True
        sessions = [m.session for m in self.members.values() if m.session is not None]
        for member in self.members.values():
            member.participant = None
            member.session = None
            await self._left(member)
        if self._room is not None:
            await self._room.close()
        self.service.forget(self)
        for session in sessions:
            session.send(farewell)
            session.close_soon(code, reason)
