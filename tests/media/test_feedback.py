"""RTCP feedback through the relay: keyframe requests, NACKs, bandwidth estimates."""

from __future__ import annotations

import asyncio
import time

from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    pack_remb_fci,
    unpack_remb_fci,
)

import media

from .helpers import Client, relay_config, wait_for


def spy_rtcp(client: Client, kind: str) -> list[tuple[float, object]]:
    """Record the RTCP a client's sender receives (aiortc still handles it)."""
    sender = next(s for s in client.pc.getSenders() if s.track is not None and s.kind == kind)
    seen: list[tuple[float, object]] = []
    original = sender._handle_rtcp_packet

    async def spy(packet: object) -> None:
        seen.append((time.monotonic(), packet))
        await original(packet)

    sender._handle_rtcp_packet = spy
    return seen


def plis(seen, ssrc: int) -> list[float]:
    return [
        t for t, p in seen
        if isinstance(p, RtcpPsfbPacket) and p.fmt == RTCP_PSFB_PLI and p.media_ssrc == ssrc
    ]


def nacks(seen) -> list[object]:
    return [p for _, p in seen if isinstance(p, RtcpRtpfbPacket) and p.fmt == RTCP_RTPFB_NACK]


async def _call() -> tuple[media.Relay, Client, Client]:
    relay = media.Relay(relay_config())
    room = relay.room("feedback")
    alice, bob = Client("alice", "red", audio=False), Client("bob", "blue", audio=False)
    await alice.join(room)
    await bob.join(room)
    assert await wait_for(lambda: bool(bob.tracks("video")) and len(bob.tracks("video")[0].frames) > 20, 15)
    await asyncio.sleep(0.5)  # past the relay's own keyframe-request rate limit
    return relay, alice, bob


async def test_pli_from_subscriber_reaches_publisher_and_brings_a_keyframe() -> None:
    relay, alice, bob = await _call()
    try:
        seen = spy_rtcp(alice, "video")
        alice_ssrc = next(s for s in alice.pc.getSenders() if s.kind == "video")._ssrc
        video = bob.tracks("video", "alice")[0]
        keyframes_before = len(video.key_frames)
        relay_ssrc = video.rtp[-1][1]
        sent_at = time.monotonic()
        await video.receiver._send_rtcp_pli(relay_ssrc)

        assert await wait_for(lambda: plis(seen, alice_ssrc), timeout=2)
        assert await wait_for(lambda: len(video.key_frames) > keyframes_before, timeout=2)
        assert video.key_frames[-1] > sent_at
        # and the counter kept running across the keyframe (decoded fine)
        count = len(video.frames)
        assert await wait_for(lambda: len(video.frames) > count + 10, 3)
    finally:
        await alice.close()
        await bob.close()
        await relay.close()


async def test_nack_is_answered_from_history_not_forwarded() -> None:
    relay, alice, bob = await _call()
    try:
        seen = spy_rtcp(alice, "video")
        video = bob.tracks("video", "alice")[0]
        relay_ssrc = video.rtp[-1][1]
        media_pt = video.rtp[-1][2]
        lost = video.rtp[-5][3]  # a packet bob did get: the relay must still have it
        await video.receiver._send_rtcp_nack(relay_ssrc, [lost])

        def retransmitted() -> bool:
            return any(
                pt != media_pt and osn == lost.to_bytes(2, "big")
                for _, _, pt, _, osn in video.rtp
            )

        assert await wait_for(retransmitted, timeout=2), video.rtp[-3:]
        (rtx,) = [(ssrc, pt) for _, ssrc, pt, _, osn in video.rtp if pt != media_pt and osn == lost.to_bytes(2, "big")]
        assert rtx[0] != relay_ssrc  # RTX stream (RFC 4588), own SSRC
        await asyncio.sleep(0.3)
        assert nacks(seen) == []  # the publisher never heard about it

        # a NACK for a packet outside the history is not answered (nor forwarded)
        await video.receiver._send_rtcp_nack(relay_ssrc, [(lost + 30000) & 0xFFFF])
        await asyncio.sleep(0.3)
        assert nacks(seen) == []
        room = relay.room("feedback")
        (subscription,) = room.participants["bob"].subscriptions
        assert subscription.stats.nacks_answered == 1
        assert subscription.stats.nacks_missed == 1
    finally:
        await alice.close()
        await bob.close()
        await relay.close()


async def test_remb_from_subscriber_is_clamped_and_passed_to_publisher() -> None:
    relay = media.Relay(relay_config(max_video_bitrate=800_000))
    room = relay.room("remb")
    alice, bob = Client("alice", "red", audio=False), Client("bob", "blue", audio=False)
    try:
        await alice.join(room)
        await bob.join(room)
        assert await wait_for(lambda: bool(bob.tracks("video")) and bob.tracks("video")[0].rtp, 15)
        seen = spy_rtcp(alice, "video")
        alice_ssrc = next(s for s in alice.pc.getSenders() if s.kind == "video")._ssrc
        video = bob.tracks("video", "alice")[0]
        relay_ssrc = video.rtp[-1][1]
        rtcp_ssrc = next(t for t in bob.pc.getTransceivers() if t.receiver is video.receiver).sender._ssrc

        def rembs() -> list[int]:
            out = []
            for _, p in seen:
                if isinstance(p, RtcpPsfbPacket) and p.fmt == RTCP_PSFB_APP:
                    bitrate, ssrcs = unpack_remb_fci(p.fci)
                    if alice_ssrc in ssrcs:
                        out.append(bitrate)
            return out

        for bitrate in (5_000_000, 300_000):
            await video.receiver._send_rtcp(
                RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0,
                               fci=pack_remb_fci(bitrate, [relay_ssrc]))
            )
            await asyncio.sleep(0.2)
        assert await wait_for(lambda: 300_000 in rembs(), 2), rembs()
        # bob's 5 Mbit/s estimate was clamped to the configured ceiling
        assert max(rembs()) <= 800_000, rembs()
    finally:
        await alice.close()
        await bob.close()
        await relay.close()

