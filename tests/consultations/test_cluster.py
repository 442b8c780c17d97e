"""The media-worker directory in Redis: placement, dead workers, and rooms that moved."""

from __future__ import annotations

import redis.asyncio as aioredis

from caretrack.consultations.cluster import RedisDirectory, Registration, room_key
from signalling.proxy import Worker


async def test_placement_registration_and_moved_rooms(redis_url) -> None:
    redis = aioredis.Redis.from_url(redis_url)
    moved: list[list[str]] = []
    hosted = {"a": ["c1", "c2"], "b": []}

    async def record(ids: list[str]) -> None:
        moved.append(ids)

    workers = {name: Registration(redis, Worker(name, f"ws://{name}/signal"), hosted=lambda n=name: hosted[n],
                                  moved=record) for name in ("a", "b")}
    try:
        directory = RedisDirectory(redis)
        assert await directory.place("c0", frozenset()) is None  # nobody registered yet
        for registration in workers.values():
            await registration.beat()
        # "a" hosts two rooms, "b" none: a new consultation goes to "b", and stays there
        assert await directory.place("c3", frozenset()) == Worker("b", "ws://b/signal")
        assert await directory.place("c3", frozenset({"a"})) == Worker("b", "ws://b/signal")
        assert await directory.place("c3", frozenset({"b"})) == Worker("a", "ws://a/signal")  # avoided: re-placed
        assert sorted(w.id for w in await directory.live_workers()) == ["a", "b"]

        # "a" holds its rooms on each beat; one placed elsewhere meanwhile is handed back
        await workers["a"].beat()
        await redis.set(room_key("c2"), "b")
        await workers["a"].beat()
        assert moved == [["c2"]]

        await directory.unreachable("c1", Worker("a", "ws://a/signal"))
        assert [w.id for w in await directory.live_workers()] == ["b"]
        await workers["b"].stop()
        assert await directory.live_workers() == []
    finally:
        await redis.aclose()
