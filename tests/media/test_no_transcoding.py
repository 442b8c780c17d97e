"""The relay forwards without ever creating a video (or audio) encoder/decoder.

aiortc creates codecs in exactly two places: ``RTCRtpSender._next_encoded_frame``
calls ``get_encoder`` and the receiver's ``decoder_worker`` thread calls
``get_decoder``.  The guard wraps both (the test peers keep using them) and
fails loudly when the caller belongs to one of the relay's peer connections.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender
import pytest
from aiortc import RTCPeerConnection

import media
from media import _aiortc_hooks as hooks

from .helpers import Client, relay_config, wait_for


class CodecGuard:
    """Records (and refuses) codec creation on behalf of the watched connections."""

    def __init__(self, watched: Callable[[], Iterable[RTCPeerConnection]]) -> None:
        self.watched = watched
        self.violations: list[str] = []
        self.allowed = 0
        self._real_encoder = aiortc.rtcrtpsender.get_encoder
        self._real_decoder = aiortc.rtcrtpreceiver.get_decoder

    def __enter__(self) -> CodecGuard:
        aiortc.rtcrtpsender.get_encoder = self._get_encoder
        aiortc.rtcrtpreceiver.get_decoder = self._get_decoder
        return self

    def __exit__(self, *exc: object) -> None:
        aiortc.rtcrtpsender.get_encoder = self._real_encoder
        aiortc.rtcrtpreceiver.get_decoder = self._real_decoder

    def _get_encoder(self, codec):
        sender = sys._getframe(1).f_locals.get("self")
        if any(sender is s for pc in self.watched() for s in pc.getSenders()):
            self.violations.append(f"encoder {codec.mimeType} for {sender}")
            raise AssertionError(f"relay created a {codec.mimeType} encoder")
        self.allowed += 1
        return self._real_encoder(codec)

    def _get_decoder(self, codec):
        # decoder_worker(loop, input_q, output_q, ...) feeds the receiver's track
        output_q = sys._getframe(1).f_locals.get("output_q")
        for pc in list(self.watched()):
            for receiver in pc.getReceivers():
                if receiver.track is not None and receiver.track._queue is output_q:
                    self.violations.append(f"decoder {codec.mimeType} for {receiver}")
                    raise AssertionError(f"relay created a {codec.mimeType} decoder")
        self.allowed += 1
        return self._real_decoder(codec)


async def _three_party_call(watch_clients: bool, tmp_path: Path) -> CodecGuard:
    relay = media.Relay(relay_config(recordings_dir=tmp_path))
    room = relay.room("guarded")
    clients = [Client("alice", "red"), Client("bob", "blue"), Client("carol", "green")]

    def watched() -> list[RTCPeerConnection]:
        if watch_clients:
            return [clients[0].pc]  # alice: refused an encoder, decodes bob and carol
        return list(relay.peer_connections)

    try:
        with CodecGuard(watched) as guard:
            for client in clients:
                await client.join(room)

            def all_decoded() -> bool:
                return all(
                    len(c.tracks("video")) == 2 and all(len(t.frames) > 15 for t in c.tracks("video"))
                    and len(c.tracks("audio")) == 2 and all(t.frames for t in c.tracks("audio"))
                    for c in clients
                )

            if not watch_clients:
                assert await wait_for(all_decoded, timeout=20)
                await room.start_recording("guarded.mkv")
                await asyncio.sleep(1)
                await room.stop_recording()
                for pc in relay.peer_connections:
                    for sender in pc.getSenders():
                        assert hooks.sender_encoder(sender) is None
            else:
                await wait_for(
                    lambda: any(v.startswith("decoder video") for v in guard.violations), timeout=20
                )
    finally:
        for client in clients:
            await client.close()
        await relay.close()
    return guard


async def test_relay_never_creates_an_encoder_or_decoder(tmp_path: Path) -> None:
    guard = await _three_party_call(watch_clients=False, tmp_path=tmp_path)
    assert (tmp_path / "guarded.mkv").stat().st_size > 0
    assert guard.violations == []
    # the peers themselves did encode and decode through the wrapped functions
    assert guard.allowed >= 3 * 2 + 3 * 4


# the refused decoder raises in aiortc's decoder thread, which pytest reports
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_guard_catches_codecs_on_watched_connections(tmp_path: Path) -> None:
    """Control: pointed at a client (which does encode/decode), the guard trips."""
    guard = await _three_party_call(watch_clients=True, tmp_path=tmp_path)
    assert any(v.startswith("encoder video/VP8") for v in guard.violations), guard.violations
    assert any(v.startswith("decoder video/VP8") for v in guard.violations), guard.violations
