"""Two and three real aiortc peers talking through the relay."""

from __future__ import annotations

import asyncio
from itertools import pairwise

import media

from .helpers import Client, PatternTrack, colour_name, relay_config, wait_for


def counters(received) -> list[int]:
    return [info[1] for _, info in received.frames]


async def test_two_peers_receive_each_others_video_and_audio() -> None:
    relay = media.Relay(relay_config())
    room = relay.room("consultation")
    alice, bob = Client("alice", "red"), Client("bob", "blue")
    try:
        await alice.join(room)
        await bob.join(room)

        def flowing() -> bool:
            return all(
                len(c.tracks("video")) == 1
                and len(c.tracks("video")[0].frames) >= 30
                and len(c.tracks("audio")) == 1
                and len(c.tracks("audio")[0].frames) >= 50
                for c in (alice, bob)
            )

        assert await wait_for(flowing, timeout=15), [
            (c.name, r.kind, len(r.frames)) for c in (alice, bob) for r in c.received
        ]
        for me, other, colour in ((alice, "bob", "blue"), (bob, "alice", "red")):
            (video,) = me.tracks("video")
            assert video.publisher == other
            assert me.tracks("audio")[0].publisher == other
            colours = {colour_name(info[0]) for _, info in video.frames}
            assert colours == {colour}, colours
            seen = counters(video)
            # counters strictly increase (a forwarded stream, in order, no repeats)
            assert all(b > a for a, b in pairwise(seen)), seen
            assert seen[-1] - seen[0] >= 29
        # the relay decoded nothing: its receivers' tracks never got a frame
        for participant in room.participants.values():
            for publication in participant.publications.values():
                assert publication.stats.packets_in > 0
    finally:
        await alice.close()
        await bob.close()
        await relay.close()
    assert relay.peer_connections == {}


async def test_late_joiner_gets_a_keyframe_quickly() -> None:
    relay = media.Relay(relay_config())
    room = relay.room("late")
    alice, bob, carol = Client("alice", "red"), Client("bob", "blue"), Client("carol", "green")
    try:
        await alice.join(room)
        await bob.join(room)
        assert await wait_for(lambda: bool(bob.tracks("video")) and len(bob.tracks("video")[0].frames) > 30, 15)
        # alice's encoder has long since sent its only unprompted keyframe
        # (aiortc's VP8 encoder uses kf_max_dist=3000)
        joined = asyncio.get_running_loop().time()
        await carol.join(room)

        def decoded_both() -> bool:
            tracks = carol.tracks("video")
            return len(tracks) == 2 and all(t.frames for t in tracks)

        assert await wait_for(decoded_both, timeout=5)
        for track in carol.tracks("video"):
            first_frame = track.frames[0][0]
            assert first_frame - joined < 2.0, (track.publisher, first_frame - joined)
            # the first packet forwarded to the late joiner starts a keyframe
            assert track.rtp and track.key_frames and track.key_frames[0] == track.rtp[0][0]
            expected = {"alice": "red", "bob": "blue"}[track.publisher]
            assert colour_name(track.frames[0][1][0]) == expected
        # carol's tracks reached the others too
        assert await wait_for(
            lambda: len(alice.tracks("video", "carol")) == 1 and alice.tracks("video", "carol")[0].frames, 5)
    finally:
        for client in (alice, bob, carol):
            await client.close()
        await relay.close()


async def test_screen_share_reaches_the_other_peer_after_renegotiation() -> None:
    relay = media.Relay(relay_config())
    room = relay.room("share")
    alice, bob = Client("alice", "red"), Client("bob", "blue")
    try:
        await alice.join(room)
        await bob.join(room)
        assert await wait_for(lambda: len(bob.tracks("video")) == 1 and len(bob.tracks("video")[0].frames) > 10, 15)
        offers_before = bob.offers_answered

        screen = PatternTrack("green")
        alice.pc.addTrack(screen)  # like a browser, may reuse a receive-only m-line
        await alice.renegotiate()

        def screen_seen() -> bool:
            return any(
                t.frames and colour_name(t.frames[-1][1][0]) == "green"
                for t in bob.tracks("video", "alice")
            )

        assert await wait_for(screen_seen, timeout=10), [
            (t.publisher, len(t.frames)) for t in bob.tracks("video")
        ]
        assert bob.offers_answered > offers_before  # the relay renegotiated with bob
        camera = [t for t in bob.tracks("video", "alice") if colour_name(t.frames[-1][1][0]) == "red"]
        assert camera, "the camera track kept flowing next to the screen share"
        share = next(t for t in bob.tracks("video", "alice") if colour_name(t.frames[-1][1][0]) == "green")
        seen = counters(share)
        assert all(b > a for a, b in pairwise(seen))
        # bob still gets alice's camera while the screen share runs
        count = len(camera[0].frames)
        assert await wait_for(lambda: len(camera[0].frames) > count + 15, 5)
    finally:
        await alice.close()
        await bob.close()
        await relay.close()


async def test_offer_with_new_ice_credentials_replaces_the_connection() -> None:
    relay = media.Relay(relay_config())
    room = relay.room("restart")
    alice, bob = Client("alice", "red"), Client("bob", "blue")
    alice2 = Client("alice", "red")
    try:
        participant = await alice.join(room)
        await bob.join(room)
        assert await wait_for(lambda: bool(bob.tracks("video")) and len(bob.tracks("video")[0].frames) > 10, 15)
        bob_video = bob.tracks("video")[0]
        offers_before = bob.offers_answered

        # alice's network changed: her client rebuilt its peer connection and
        # offers again (new ICE ufrag/pwd, new DTLS fingerprint).
        await alice.close()  # also stops her signalling pump
        alice2.participant = participant
        alice2.pc.addTrack(alice2.audio)
        alice2.pc.addTrack(alice2.video)
        await alice2.pc.setLocalDescription(await alice2.pc.createOffer())
        await participant.handle_offer(alice2.pc.localDescription.sdp)
        alice2._pump()

        # bob keeps his m-line: alice's new camera arrives on it, counter restarted
        def restarted() -> bool:
            return any(info[1] < 15 for _, info in bob_video.frames[-5:])

        assert await wait_for(restarted, timeout=10)
        assert colour_name(bob_video.frames[-1][1][0]) == "red"
        assert bob.offers_answered == offers_before
        # and alice's new connection gets bob again
        assert await wait_for(
            lambda: len(alice2.tracks("video", "bob")) == 1 and len(alice2.tracks("video", "bob")[0].frames) > 10, 10)
        assert colour_name(alice2.tracks("video", "bob")[0].frames[-1][1][0]) == "blue"
        assert len(relay.peer_connections) == 2  # the old connection was closed
    finally:
        for client in (alice, alice2, bob):
            await client.close()
        await relay.close()


async def test_leave_renegotiates_the_track_away() -> None:
    relay = media.Relay(relay_config())
    room = relay.room("leave")
    alice, bob = Client("alice", "red"), Client("bob", "blue")
    try:
        await alice.join(room)
        await bob.join(room)
        assert await wait_for(lambda: bool(alice.tracks("video")) and alice.tracks("video")[0].frames, 15)
        offers = alice.offers_answered
        await room.leave("bob")
        assert await wait_for(lambda: alice.offers_answered > offers, 5)
        directions = {t.mid: t.currentDirection for t in alice.pc.getTransceivers()}
        assert sorted(d for d in directions.values()) == ["inactive", "inactive", "sendonly", "sendonly"], directions
        assert list(room.participants) == ["alice"]
    finally:
        await alice.close()
        await bob.close()
        await relay.close()


async def test_relay_forwards_on_the_fast_receive_path() -> None:
    """After the first packet, the relay handles SRTP in the socket callback, in order."""
    from media import _aiortc_hooks as hooks

    relay = media.Relay(relay_config())
    room = relay.room("fast")
    alice, bob = Client("alice", "red", audio=False), Client("bob", "blue", audio=False)
    try:
        await alice.join(room)
        await bob.join(room)
        assert await wait_for(
            lambda: all(c.tracks("video") and len(c.tracks("video")[0].frames) >= 30 for c in (alice, bob)), 15
        )
        for participant in room.participants.values():
            (publication,) = participant.publications.values()
            dtls = publication.receiver.transport
            assert getattr(dtls, hooks._FAST_INSTALLED, False)
            # the ICE connection's callback is ours, and aiortc's queue is not filling up
            assert dtls.transport._connection.__dict__.get("data_received") is not None
            assert dtls.transport._connection._queue.qsize() < 5
            assert publication.stats.packets_in > 30
        for me in (alice, bob):
            seen = counters(me.tracks("video")[0])
            assert all(b > a for a, b in pairwise(seen)), seen
    finally:
        await alice.close()
        await bob.close()
        await relay.close()
