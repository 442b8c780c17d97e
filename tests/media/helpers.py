"""Real aiortc peers for the relay tests: a pattern source and a decoding sink.

The video source paints a solid colour (per peer) and writes its frame counter
as 12 black/white 16x16 luma blocks on the top row.  The sink decodes what the
relay forwarded and reads both back, so tests assert on pixels that travelled
publisher -> relay -> subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.mediastreams import MediaStreamError

import media

WIDTH, HEIGHT = 320, 240
BLOCK = 16
BITS = 12
ADDRESS_NETWORK = "192.0.2.0/24"  # this machine's eth0; aioice skips loopback

# Y, U, V of the colour each test peer paints
COLOURS = {
    "red": (81, 90, 240),
    "green": (145, 54, 34),
    "blue": (41, 240, 110),
}


def relay_config(**kwargs: Any) -> media.RelayConfig:
    return media.RelayConfig(allowed_networks=(ADDRESS_NETWORK,), **kwargs)


def _plane_bytes(line_size: int, rows: list[bytes]) -> bytes:
    return b"".join(row.ljust(line_size, b"\x00") for row in rows)


class CountingAudioTrack(AudioStreamTrack):
    """aiortc's 20 ms silence, with the moment each frame was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent_times: list[float] = []

    async def recv(self) -> av.AudioFrame:
        frame = await super().recv()
        self.sent_times.append(time.monotonic())
        return frame


class PatternTrack(VideoStreamTrack):
    """30 fps frames of one colour with the frame number in the top-row blocks."""

    def __init__(self, colour: str) -> None:
        super().__init__()
        self.colour = colour
        self.y, self.u, self.v = COLOURS[colour]
        self.sent = 0
        self.sent_times: list[float] = []

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        counter = self.sent
        self.sent += 1
        self.sent_times.append(time.monotonic())
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        top = bytearray()
        for i in range(WIDTH // BLOCK):
            bit = (counter >> i) & 1 if i < BITS else 0
            top += bytes([235 if bit else 16]) * BLOCK
        y_rows = [bytes(top)] * BLOCK + [bytes([self.y]) * WIDTH] * (HEIGHT - BLOCK)
        frame.planes[0].update(_plane_bytes(frame.planes[0].line_size, y_rows))
        for plane, value in ((frame.planes[1], self.u), (frame.planes[2], self.v)):
            rows = [bytes([value]) * (WIDTH // 2)] * (HEIGHT // 2)
            plane.update(_plane_bytes(plane.line_size, rows))
        frame.pts = pts
        frame.time_base = time_base
        return frame


def read_frame(frame: av.VideoFrame) -> tuple[tuple[int, int, int], int]:
    """(Y, U, V) at the picture centre, and the counter from the top-row blocks."""
    frame = frame.reformat(format="yuv420p")
    y_plane, u_plane, v_plane = (bytes(p) for p in frame.planes)
    y_stride, u_stride, v_stride = (p.line_size for p in frame.planes)
    cy, cx = frame.height // 2, frame.width // 2
    colour = (
        y_plane[cy * y_stride + cx],
        u_plane[(cy // 2) * u_stride + cx // 2],
        v_plane[(cy // 2) * v_stride + cx // 2],
    )
    counter = 0
    for i in range(BITS):
        if y_plane[(BLOCK // 2) * y_stride + i * BLOCK + BLOCK // 2] > 128:
            counter |= 1 << i
    return colour, counter


def track_is_vp8_keyframe_start(received: Received, payload: bytes) -> bool:
    """Independent of media.forwarding: aiortc's own VP8 descriptor parser."""
    if received.kind != "video" or not payload:
        return False
    try:
        descriptor, data = VpxPayloadDescriptor.parse(payload)
    except ValueError:
        return False
    return bool(descriptor.partition_start and descriptor.partition_id == 0 and data and not data[0] & 1)


def colour_name(yuv: tuple[int, int, int], tolerance: int = 30) -> str | None:
    for name, expected in COLOURS.items():
        if all(abs(a - b) <= tolerance for a, b in zip(yuv, expected, strict=True)):
            return name
    return None


@dataclass
class Received:
    """What one client got on one incoming track."""

    kind: str
    publisher: str | None
    started: float
    mid: str | None = None
    receiver: Any = None
    frames: list[tuple[float, Any]] = field(default_factory=list)  # (time, info)
    key_frames: list[float] = field(default_factory=list)  # VP8 keyframe starts (RTP)
    rtp: list[tuple[float, int, int, int, bytes]] = field(default_factory=list)


class Client:
    """A participant: an aiortc peer that publishes and decodes what it receives."""

    def __init__(self, name: str, colour: str | None = None, audio: bool = True) -> None:
        self.name = name
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.video = PatternTrack(colour) if colour else None
        self.audio = CountingAudioTrack() if audio else None
        self.received: list[Received] = []
        self.track_info: dict[str, dict[str, Any]] = {}
        self.participant: media.Participant | None = None
        self.offers_answered = 0
        self._tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    async def join(self, room: media.Room) -> media.Participant:
        if self.audio:
            self.pc.addTrack(self.audio)
        if self.video:
            self.pc.addTrack(self.video)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.participant = await room.join(self.name, self.pc.localDescription.sdp)
        self._pump()
        return self.participant

    def _pump(self) -> None:
        self._tasks.append(asyncio.ensure_future(self._pump_messages(self.participant)))

    async def _pump_messages(self, participant: media.Participant) -> None:
        async for message in participant.messages():
            if message["type"] == "answer":
                await self.pc.setRemoteDescription(RTCSessionDescription(**_sdp(message)))
            elif message["type"] == "offer":
                self.track_info.update(message["tracks"])
                await self.pc.setRemoteDescription(RTCSessionDescription(**_sdp(message)))
                await self.pc.setLocalDescription(await self.pc.createAnswer())
                await participant.handle_answer(self.pc.localDescription.sdp)
                self.offers_answered += 1

    async def renegotiate(self) -> None:
        """Send a client offer (e.g. after adding a screen-share track)."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self.participant.handle_offer(self.pc.localDescription.sdp)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._tasks.append(asyncio.ensure_future(self._consume(track)))

    def _spy_rtp(self, receiver: Any, received: Received) -> None:
        """Log the RTP packets an incoming track gets (then let aiortc handle them)."""
        original = receiver._handle_rtp_packet

        async def spy(packet: Any, arrival_time_ms: int) -> None:
            now = time.monotonic()
            received.rtp.append((now, packet.ssrc, packet.payload_type, packet.sequence_number, packet.payload[:2]))
            if track_is_vp8_keyframe_start(received, packet.payload):
                received.key_frames.append(now)
            await original(packet, arrival_time_ms)

        receiver._handle_rtp_packet = spy

    async def _consume(self, track: MediaStreamTrack) -> None:
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        info = self.track_info.get(transceiver.mid, {})
        received = Received(
            kind=track.kind,
            publisher=info.get("participant"),
            started=time.monotonic(),
            mid=transceiver.mid,
            receiver=transceiver.receiver,
        )
        self.received.append(received)
        self._spy_rtp(transceiver.receiver, received)
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                now = time.monotonic()
                if track.kind == "video":
                    received.frames.append((now, read_frame(frame)))
                else:
                    received.frames.append((now, frame.samples))

    def tracks(self, kind: str, publisher: str | None = None) -> list[Received]:
        return [
            r for r in self.received
            if r.kind == kind and (publisher is None or r.publisher == publisher)
        ]

    async def close(self) -> None:
        await self.pc.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _sdp(message: dict[str, Any]) -> dict[str, str]:
    return {"sdp": message["sdp"], "type": message["type"]}


async def wait_for(predicate, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(interval)
    return predicate()


__all__ = [
    "Client",
    "PatternTrack",
    "Received",
    "colour_name",
    "read_frame",
    "relay_config",
    "wait_for",
]
