"""Two and three real aiortc peers talking through the relay."""

from __future__ import annotations

import asyncio

import media

from .helpers import Client, colour_name, relay_config, wait_for


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
            assert all(b > a for a, b in zip(seen, seen[1:])), seen
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
