"""A tiny Starlette app serving only the signalling endpoint on hypercorn (in this loop),
a test authoriser, recording hooks, and a Python client that speaks the wire protocol —
optionally with a real aiortc peer connection behind it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import websockets
from aiortc import AudioStreamTrack, MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.websockets import WebSocket

import media
import signalling
from signalling import Hooks, Limits, Principal, Refused, Seat, StoredChat
from signalling import protocol as p
from tests.conftest import free_port, serve_in_loop, stop_serving
from tests.media.helpers import PatternTrack, Received, read_frame, relay_config

ORIGIN = "http://caretrack.test"
NAMES = {"doc": "Dr Ada Host", "pat": "Pat Patient", "gus": "Gus Guest", "eve": "Eve Outsider"}
TEST_LIMITS = Limits(message_rate=10, message_burst=30, flood_strikes=10, join_timeout_seconds=3)


def authenticate(websocket: WebSocket) -> Principal | None:
    user = websocket.headers.get("x-test-user")
    return Principal(user, NAMES.get(user, user)) if user else None


def allowed_origin(websocket: WebSocket) -> bool:
    return websocket.headers.get("origin") == ORIGIN


async def authorize(principal: Principal, consultation_id: str) -> Seat:
    """``c-*``: doc hosts, pat is the patient, gus a guest.  ``closed-*`` is closed,
    ``later-*`` opens in an hour; in ``form-*`` the patient has a form to complete before
    joining; nobody else has a seat."""
    roles = {"doc": "host", "pat": "patient", "gus": "guest"}
    if principal.id not in roles:
        raise Refused(4403, f"{principal.id} has no seat in consultation {consultation_id}")
    role = roles[principal.id]
    if consultation_id.startswith("closed-"):
        return Seat(role, open=False)
    if consultation_id.startswith("later-"):
        return Seat(role, opens_at=datetime.now(UTC) + timedelta(hours=1))
    if consultation_id.startswith("form-") and role == "patient":
        return Seat(role, join_refused="complete the form first")
    return Seat(role)


class RecordingHooks(Hooks):
    """Persists into lists, like caretrack's rows; can be told to fail."""

    def __init__(self) -> None:
        super().__init__()
        self.chats: list[tuple[str, str, str]] = []
        self.consents: list[tuple[str, str, str, bool]] = []
        self.started: list[tuple[str, Path]] = []
        self.stopped: list[tuple[str, Path]] = []
        self.ended: list[tuple[str, str]] = []
        self.admits: list[tuple[str, str, str]] = []
        self.presence: list[tuple[str, ...]] = []  # ("join"|"leave"|"end", consultation, who, ...) in order
        self.arrivals: list[tuple[str, str, str]] = []  # (consultation, who, role): came and waited
        self.fail_chat = False
        self.fail_join = False

    async def on_admit(self, consultation_id: str, host: Principal, admitted: Principal) -> None:
        self.admits.append((consultation_id, host.id, admitted.id))

    async def on_chat(self, consultation_id: str, principal: Principal, text: str) -> StoredChat:
        if self.fail_chat:
            raise RuntimeError("database is down")
        self.chats.append((consultation_id, principal.id, text))
        return StoredChat(id=f"msg-{len(self.chats)}", at=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))

    async def on_recording_consent(self, consultation_id, principal, role, granted) -> None:
        self.consents.append((consultation_id, principal.id, role, granted))

    async def on_recording_started(self, consultation_id: str, path: Path) -> None:
        self.started.append((consultation_id, path))

    async def on_recording_stopped(self, consultation_id: str, path: Path) -> None:
        self.stopped.append((consultation_id, path))

    async def on_end(self, consultation_id: str, principal: Principal) -> None:
        self.ended.append((consultation_id, principal.id))
        self.presence.append(("end", consultation_id, principal.id))

    async def on_join(self, consultation_id: str, principal: Principal, role) -> str:
        if self.fail_join:
            raise RuntimeError("database is down")
        stay = f"stay-{len(self.presence) + 1}"
        self.presence.append(("join", consultation_id, principal.id, role, stay))
        return stay

    async def on_arrive(self, consultation_id: str, principal: Principal, role) -> None:
        self.arrivals.append((consultation_id, principal.id, role))

    async def on_leave(self, consultation_id: str, principal: Principal, stay: str) -> None:
        self.presence.append(("leave", consultation_id, principal.id, stay))


@dataclass
class SignalServer:
    url: str
    service: signalling.SignallingService
    relay: media.Relay
    hooks: RecordingHooks
    recordings: Path


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[SignalServer]:

    relay = media.Relay(relay_config(recordings_dir=tmp_path / "recordings"))
    hooks = RecordingHooks()
    service = signalling.SignallingService(relay, authenticate=authenticate, allowed_origin=allowed_origin,
                                           authorize=authorize, hooks=hooks, limits=TEST_LIMITS)

    async def healthz(request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/healthz", healthz), service.route("/ws/signal")])
    port = free_port()
    task, stop = await serve_in_loop(app, port)
    yield SignalServer(f"ws://127.0.0.1:{port}/ws/signal", service, relay, hooks, tmp_path / "recordings")
    await service.close()
    await relay.close()
    await stop_serving(task, stop)
    assert relay.peer_connections == {}


# --- the client ----------------------------------------------------------------------------


@dataclass
class SignalClient:
    """One socket: records every server message (validated by the codec), answers pings,
    and, with media, applies the relay's SDP to a real aiortc peer in order."""

    user: str | None
    ws: Any
    messages: list[Any] = field(default_factory=list)
    pc: RTCPeerConnection | None = None
    video: PatternTrack | None = None
    received: list[Received] = field(default_factory=list)
    track_info: dict[str, Any] = field(default_factory=dict)
    offers_answered: int = 0
    closed: asyncio.Future | None = None
    _tasks: list[asyncio.Task] = field(default_factory=list)

    def start(self) -> None:
        self.closed = asyncio.get_running_loop().create_future()
        self._tasks.append(asyncio.create_task(self._read()))

    async def send(self, message: dict | str) -> None:
        await self.ws.send(message if isinstance(message, str) else json.dumps({"v": 1, **message}))

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                message = p.from_wire(raw, sender="server")
                self.messages.append(message)
                if isinstance(message, p.Ping):
                    await self.send({"type": "pong"})
                elif isinstance(message, p.RelayAnswer):
                    await self.pc.setRemoteDescription(RTCSessionDescription(message.sdp, "answer"))
                elif isinstance(message, p.RelayOffer):
                    self.track_info.update({mid: info.model_dump() for mid, info in message.tracks.items()})
                    await self.pc.setRemoteDescription(RTCSessionDescription(message.sdp, "offer"))
                    await self.pc.setLocalDescription(await self.pc.createAnswer())
                    await self.send({"type": "answer", "sdp": self.pc.localDescription.sdp})
                    self.offers_answered += 1
        except websockets.ConnectionClosed:
            pass
        finally:
            if not self.closed.done():
                self.closed.set_result((self.ws.close_code, self.ws.close_reason))

    def of(self, kind: type) -> list[Any]:
        return [m for m in self.messages if isinstance(m, kind)]

    def mark(self) -> int:
        """Where the messages received from now on start (for ``wait(since=)``)."""
        return len(self.messages)

    async def wait(self, kind: type, predicate=lambda m: True, timeout: float = 10, since: int = 0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.messages[since:]:
                if isinstance(message, kind) and predicate(message):
                    return message
            await asyncio.sleep(0.02)
        got = [type(m).__name__ for m in self.messages]
        raise AssertionError(f"{self.user}: no {kind.__name__} matching; got {got}")

    async def wait_closed(self, timeout: float = 10) -> tuple[int, str]:
        return await asyncio.wait_for(asyncio.shield(self.closed), timeout)

    # --- media ---

    async def publish(self, colour: str) -> None:
        """Build a peer with audio + a colour-pattern camera and send its offer."""
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.on("track", lambda track: self._tasks.append(asyncio.ensure_future(self._consume(track))))
        self.pc.addTrack(AudioStreamTrack())
        self.video = PatternTrack(colour)
        self.pc.addTrack(self.video)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self.send({"type": "offer", "sdp": self.pc.localDescription.sdp})

    async def _consume(self, track: MediaStreamTrack) -> None:
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        info = self.track_info.get(transceiver.mid, {})
        received = Received(kind=track.kind, publisher=info.get("participant"), started=time.monotonic(),
                            mid=transceiver.mid)
        self.received.append(received)
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                info = read_frame(frame) if track.kind == "video" else frame.samples
                received.frames.append((time.monotonic(), info))

    def tracks(self, kind: str, publisher: str | None = None) -> list[Received]:
        return [r for r in self.received if r.kind == kind and (publisher is None or r.publisher == publisher)]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        if self.pc is not None:
            await self.pc.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def open_socket(server: SignalServer, user: str | None, origin: str = ORIGIN) -> SignalClient:
    headers = {"x-test-user": user} if user else {}
    ws = await websockets.connect(server.url, origin=origin, additional_headers=headers, open_timeout=5,
                                  max_size=2**22)
    client = SignalClient(user, ws)
    client.start()
    return client


async def join(server: SignalServer, user: str, consultation: str) -> SignalClient:
    client = await open_socket(server, user)
    await client.send({"type": "join", "consultation": consultation})
    await client.wait(p.Welcome)
    return client


@pytest.fixture
async def clients() -> AsyncIterator[list[SignalClient]]:
    """Clients to close at the end of the test (append them)."""
    opened: list[SignalClient] = []
    yield opened
    for client in opened:
        await client.close()
