"""One signalling socket: the join handshake, then a reader that handles the client's
messages one at a time, in order, and a writer that sends everything queued for the
client (relay SDP included) in order, with heartbeats.

Anything wrong with a message becomes an ``error`` message or a close code; nothing a
client sends can take the server down.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from datetime import UTC
from typing import Any, Protocol

from pydantic import BaseModel
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

import media

from . import protocol as p
from .budget import MessageBudget, Verdict
from .consultation import Consultation, Member
from .gate import Authorize, receive_join, seat_for, seat_to_join, truncate
from .gate import Closing as _Close
from .policy import Hooks, Limits, Principal

logger = logging.getLogger(__name__)


class Service(Protocol):
    """The service a socket joins consultations through (``service.SignallingService``)."""

    hooks: Hooks
    limits: Limits
    relay: media.Relay

    @property
    def authorize(self) -> Authorize: ...

    def ice_servers_for(self, principal: Principal) -> list[p.IceServerInfo]: ...

    def has_ended(self, consultation_id: str) -> bool: ...

    def consultation(self, consultation_id: str) -> Consultation: ...

_ids = itertools.count(1)
_FLUSH_AND_CLOSE = object()


class Session:
    def __init__(self, service: Service, websocket: WebSocket, principal: Principal) -> None:
        self.service = service
        self.ws = websocket
        self.principal = principal
        self.limits = service.limits
        self.prefix = f"signal#{next(_ids)} {principal.id}"
        self.consultation: Consultation | None = None
        self._out: asyncio.Queue[Any] = asyncio.Queue()
        self._close: tuple[int, str] | None = None
        self._closing = False
        self._last_heard = time.monotonic()
        self.budget = MessageBudget(self.limits.message_rate, self.limits.message_burst, self.limits.flood_strikes,
                                    self.limits.flood_seconds)

    def __repr__(self) -> str:
        return f"Session({self.prefix})"

    # --- called by the consultation (sync) ------------------------------------------------

    def send(self, message: BaseModel) -> None:
        if self._closing:
            return
        if self._out.qsize() >= self.limits.max_outgoing:
            self.close_soon(p.CLOSE_TIMEOUT, "the client is not reading its messages")
            return
        self._out.put_nowait(p.to_wire(message))

    def close_soon(self, code: int, reason: str) -> None:
        """Close after what is already queued has been sent."""
        if self._closing:
            return
        self._closing = True
        self._close = (code, reason)
        self._out.put_nowait(_FLUSH_AND_CLOSE)

    # --- the socket's life ----------------------------------------------------------------

    async def run(self) -> None:
        writer = asyncio.create_task(self._writer())
        reader = asyncio.create_task(self._reader())
        gone = False
        try:
            done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                exc = reader.exception()
                if isinstance(exc, WebSocketDisconnect):
                    gone = True
                elif isinstance(exc, _Close):
                    self.fail(exc.code, exc.reason)
                elif exc is not None:
                    logger.error("%s: reader failed", self.prefix, exc_info=exc)
                    self.fail(1011, "internal error")
                if not gone:  # let the writer flush the error, then stop
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(asyncio.shield(writer), self.limits.send_timeout_seconds)
            elif writer.exception() is not None:
                exc = writer.exception()
                if isinstance(exc, _Close):
                    self._close = (exc.code, exc.reason)
                elif isinstance(exc, WebSocketDisconnect):
                    gone = True
                else:
                    logger.error("%s: writer failed", self.prefix, exc_info=exc)
                    self._close = (1011, "internal error")
        finally:
            for task in (reader, writer):
                task.cancel()
            await asyncio.gather(reader, writer, return_exceptions=True)
            if self.consultation is not None:
                try:
                    await self.consultation.detach(self)
                except Exception:
                    logger.exception("%s: leaving the consultation failed", self.prefix)
        code, reason = self._close or (p.CLOSE_NORMAL, "")
        if not gone and self.ws.client_state == WebSocketState.CONNECTED:
            logger.info("%s: closing %s %s", self.prefix, code, reason)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._close_and_drain(code, reason), 5)

    def fail(self, code: int, reason: str) -> None:
        """Tell the client why (an error message), then close with the same code."""
        self.send(p.Error(code=code, message=reason))
        self.close_soon(code, reason)

    async def _close_and_drain(self, code: int, reason: str) -> None:
        """Close, then read until the client's close frame: a flooder's backlog comes
        first, and the client only sees our close code once the server has read it."""
        await self.ws.close(code, truncate(reason))
        while self.ws.client_state == WebSocketState.CONNECTED:
            if (await self.ws.receive())["type"] == "websocket.disconnect":
                return

    # --- writing --------------------------------------------------------------------------

    async def _writer(self) -> None:
        ping = p.to_wire(p.Ping())
        next_ping = time.monotonic() + self.limits.ping_seconds
        while True:
            try:
                item = await asyncio.wait_for(self._out.get(), max(0.0, next_ping - time.monotonic()))
            except TimeoutError:
                item = None
            if item is _FLUSH_AND_CLOSE:
                return
            if time.monotonic() - self._last_heard > self.limits.pong_timeout_seconds:
                raise _Close(p.CLOSE_TIMEOUT, "no reply to heartbeats")
            if item is not None:
                await self._send_text(item)
            if time.monotonic() >= next_ping:
                await self._send_text(ping)
                next_ping = time.monotonic() + self.limits.ping_seconds

    async def _send_text(self, text: str) -> None:
        try:
            await asyncio.wait_for(self.ws.send_text(text), self.limits.send_timeout_seconds)
        except TimeoutError:
            raise _Close(p.CLOSE_TIMEOUT, "the client is not reading its messages") from None

    # --- reading --------------------------------------------------------------------------

    async def _receive(self) -> dict[str, Any]:
        """The next message, decoded; a socket that cannot be trusted any more closes."""
        message = await self.ws.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        self._last_heard = time.monotonic()
        text = message.get("text")
        if text is None:
            raise _Close(p.CLOSE_MALFORMED, "binary messages are not accepted")
        try:
            return p.decode_json(text, self.limits.max_message_bytes)
        except p.ProtocolError as exc:
            raise _Close(exc.code, exc.message) from None

    async def _reader(self) -> None:
        join, _ = await receive_join(self.ws, self.limits)
        self._last_heard = time.monotonic()
        if isinstance(join, p.Probe):
            await self._probe(join)
            return
        await self._join(join)
        while True:
            data = await self._receive()
            self._throttle()
            try:
                message = p.validate(data)
                await self._handle(message)
            except p.ProtocolError as exc:
                if exc.code in (p.CLOSE_CLOSED,):
                    raise _Close(exc.code, exc.message) from None
                self.send(p.Error(code=exc.code, message=exc.message, about=_type_of(data)))
            except media.RelayError as exc:
                self.send(p.Error(code=p.CLOSE_MALFORMED, message=str(exc), about=_type_of(data)))
            except _Close:
                raise
            except Exception:
                logger.exception("%s: handling %s failed", self.prefix, _type_of(data))
                self.send(p.Error(code=p.ERROR_INTERNAL, message="the server could not handle this message; "
                                  "nothing was changed", about=_type_of(data)))

    async def _join(self, join: p.Join) -> None:
        service = self.service
        seat = await seat_to_join(service.authorize, self.principal, join.consultation)
        if service.has_ended(join.consultation):
            raise _Close(p.CLOSE_CLOSED, "this consultation has ended")
        consultation = service.consultation(join.consultation)
        try:
            await consultation.attach(self, self.principal, seat)
        except p.ProtocolError as exc:
            raise _Close(exc.code, exc.message) from None
        self.consultation = consultation
        logger.info("%s: joined %s as %s", self.prefix, join.consultation, seat.role)

    async def _probe(self, probe: p.Probe) -> None:
        """A network check: the relay answers one data-channel offer and echoes over it, for
        at most ``Limits.probe_seconds``; nothing joins the consultation."""
        await seat_for(self.service.authorize, self.principal, probe.consultation)
        self.send(p.ProbeReady(ice_servers=self.service.ice_servers_for(self.principal)))
        check: media.Probe | None = None
        try:
            async with asyncio.timeout(self.limits.probe_seconds):
                while True:
                    data = await self._receive()
                    self._throttle()
                    try:
                        message = p.validate(data)
                        if isinstance(message, p.Leave):
                            break
                        if isinstance(message, p.Offer) and check is None:
                            check = await media.open_probe(self.service.relay, message.sdp, self.principal.id)
                            self.send(p.RelayAnswer(sdp=check.answer))
                        elif not isinstance(message, p.Pong):
                            raise p.ProtocolError(p.CLOSE_MALFORMED, "a network check takes one offer, "
                                                  "then only pong or leave")
                    except (p.ProtocolError, media.RelayError) as exc:
                        code = exc.code if isinstance(exc, p.ProtocolError) else p.CLOSE_MALFORMED
                        self.send(p.Error(code=code, message=str(exc), about=_type_of(data)))
        except TimeoutError:  # the check's time is up (Limits.probe_seconds): it ends like a leave
            pass
        finally:
            if check is not None:
                await check.close()
        self.close_soon(p.CLOSE_NORMAL, "the network check is over")

    def _throttle(self) -> None:
        """An over-budget client is warned once per episode, and closed if it floods (see MessageBudget)."""
        verdict = self.budget.take()
        if verdict is Verdict.OVER:
            self.send(p.Error(code=p.CLOSE_FLOODING, message="too many messages: slow down"))
        elif verdict is Verdict.FLOODING:
            raise _Close(p.CLOSE_FLOODING, "too many messages")

    # --- messages -------------------------------------------------------------------------

    @property
    def joined(self) -> Consultation:
        """The consultation this socket joined (messages are handled only after the join)."""
        if self.consultation is None:  # pragma: no cover - _reader joins before it handles
            raise RuntimeError(f"{self} handles a message before its join")
        return self.consultation

    @property
    def member(self) -> Member:
        member = self.joined.members.get(self.principal.id)
        if member is None or member.session is not self:
            raise _Close(p.CLOSE_REPLACED, "replaced by a newer connection")
        return member

    def _admitted(self, what: str) -> Member:
        member = self.member
        if not member.admitted:
            raise p.ProtocolError(p.CLOSE_REFUSED, f"you cannot {what} before the host admits you")
        return member

    def _host(self, what: str) -> Member:
        member = self.member
        if member.role != "host":
            raise p.ProtocolError(p.CLOSE_REFUSED, f"only the host can {what}")
        return member

    def _relay(self, member: Member, what: str) -> media.Participant:
        if member.participant is None or member.fresh_socket:
            raise p.ProtocolError(p.CLOSE_MALFORMED, f"send your offer before any {what}")
        return member.participant

    async def _handle(self, message: BaseModel) -> None:
        consultation = self.joined
        match message:
            case p.Pong():
                pass
            case p.Join():
                raise p.ProtocolError(p.CLOSE_MALFORMED, "this socket has already joined; open a new one")
            case p.Offer(sdp=sdp):
                await consultation.offer(self._admitted("send media"), sdp)
            case p.Answer(sdp=sdp):
                member = self._admitted("send media")
                await self._relay(member, "answer").handle_answer(sdp)
            case p.Candidate(candidate=candidate):
                member = self._admitted("send media")
                init = candidate.model_dump() if candidate is not None else None
                await self._relay(member, "candidate").add_ice_candidate(init)
            case p.Leave():
                self.close_soon(p.CLOSE_NORMAL, "left the consultation")
            case p.Admit(participant=participant_id):
                await consultation.admit(self._host("admit participants"), participant_id)
            case p.Chat(text=text):
                member = self._admitted("chat")
                stored = await self.service.hooks.on_chat(consultation.id, member.principal, text)
                consultation.broadcast(p.ChatPosted(
                    id=str(stored.id), at=stored.at.astimezone(UTC).isoformat(),
                    participant=member.id, name=member.principal.name, text=text,
                ))
            case p.MediaState(audio=audio, video=video):
                member = self._admitted("share your media state")
                member.audio, member.video = audio, video
                consultation.broadcast(p.MediaStateChanged(participant=member.id, audio=audio, video=video),
                                       exclude=member)
            case p.ScreenShare(active=active, track=track):
                member = self._admitted("share your screen")
                member.screen, member.screen_track = active, track if active else None
                consultation.broadcast(p.ScreenShareChanged(participant=member.id, active=active,
                                                            track=member.screen_track), exclude=member)
            case p.RecordingConsent(granted=granted):
                await consultation.consent(self._admitted("consent to recording"), granted)
            case p.End():
                host = self._host("end the consultation")
                await consultation.end(host.principal, f"{host.principal.name} ended the consultation")
            case _:  # pragma: no cover - validate() only returns the types above
                raise p.ProtocolError(p.CLOSE_MALFORMED, f"unhandled message type {getattr(message, 'type', None)!r}")


def _type_of(data: dict[str, Any]) -> str | None:
    kind = data.get("type")
    return kind[:40] if isinstance(kind, str) else None
