"""Media workers found through Redis: each `caretrack media` process registers itself with a
heartbeat; each consultation is placed on one live worker, the least loaded when it is
first placed, and stays there while that worker lives.

Keys (all under ``caretrack:media:``):

- ``workers``: a sorted set of worker ids scored by when their heartbeat lapses (ms);
- ``worker:<id>``: a hash (``url``, ``rooms``, ``pid``) that expires with the heartbeat;
- ``room:<consultation>``: the id of the worker hosting it, refreshed by that worker.

Placement is one Lua script, so web processes racing to place a consultation agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Iterable

from redis.asyncio import Redis

from caretrack.core.logs import get_logger
from signalling.proxy import Worker

log = get_logger("caretrack.media")

PREFIX = "caretrack:media:"
WORKERS = PREFIX + "workers"
HEARTBEAT_SECONDS = 2.0
WORKER_TTL_SECONDS = 6.0  # three missed heartbeats and a worker is gone
ROOM_TTL_SECONDS = 60  # a placement outlives a worker restart this long unless refreshed


def worker_key(worker_id: str) -> str:
    return f"{PREFIX}worker:{worker_id}"


def room_key(consultation_id: str) -> str:
    return f"{PREFIX}room:{consultation_id}"


# KEYS: room, workers zset.  ARGV: now ms, room ttl s, worker key prefix, avoided ids...
_PLACE = """
local avoid = {}
for i = 4, #ARGV do avoid[ARGV[i]] = true end
local current = redis.call('GET', KEYS[1])
if current and not avoid[current] and redis.call('EXISTS', ARGV[3] .. current) == 1 then
  return {current, redis.call('HGET', ARGV[3] .. current, 'url')}
end
local best, best_rooms = nil, nil
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[1], '+inf')) do
  if not avoid[id] then
    local rooms = redis.call('HGET', ARGV[3] .. id, 'rooms')
    if rooms and (best == nil or tonumber(rooms) < best_rooms) then
      best, best_rooms = id, tonumber(rooms)
    end
  end
end
if best == nil then return nil end
redis.call('SET', KEYS[1], best, 'EX', ARGV[2])
redis.call('HINCRBY', ARGV[3] .. best, 'rooms', 1)
return {best, redis.call('HGET', ARGV[3] .. best, 'url')}
"""

# KEYS: room.  ARGV: worker id, room ttl.  1 when the worker holds (or now claims) the room.
_HOLD = """
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
return 0
"""

# KEYS: room.  ARGV: worker id.  Forget the placement if it is this worker's.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisDirectory:
    """What web processes ask: which worker hosts this consultation
    (a :class:`signalling.proxy.Directory`)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._place = redis.register_script(_PLACE)

    async def place(self, consultation_id: str, avoid: frozenset[str]) -> Worker | None:
        now_ms = int(time.time() * 1000)
        found = await self._place(keys=[room_key(consultation_id), WORKERS],
                                  args=[now_ms, ROOM_TTL_SECONDS, f"{PREFIX}worker:", *sorted(avoid)])
        if not found:
            return None
        worker_id, url = (v.decode() if isinstance(v, bytes) else v for v in found)
        return Worker(worker_id, url)

    async def unreachable(self, consultation_id: str, worker: Worker) -> None:
        """A worker that refuses connections is not taking calls: drop it until its next
        heartbeat, so nobody else is sent there meanwhile."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(WORKERS, worker.id)
            pipe.delete(worker_key(worker.id))
            await pipe.execute()

    async def live_workers(self) -> list[Worker]:
        ids = await self.redis.zrangebyscore(WORKERS, int(time.time() * 1000), "+inf")
        workers = []
        for raw in ids:
            worker_id = raw.decode() if isinstance(raw, bytes) else raw
            url = await self.redis.hget(worker_key(worker_id), "url")
            if url is not None:
                workers.append(Worker(worker_id, url.decode() if isinstance(url, bytes) else url))
        return workers


class Registration:
    """A media worker's presence in the directory: register, beat, hold its rooms, leave.

    ``hosted()`` lists the consultations the worker hosts now; ``moved(ids)`` is called for
    those that Redis says are placed elsewhere (the worker was thought dead), so their
    clients reconnect to the right worker.
    """

    def __init__(self, redis: Redis, worker: Worker, hosted: Callable[[], Iterable[str]],
                 moved: Callable[[list[str]], Awaitable[None]]) -> None:
        self.redis = redis
        self.worker = worker
        self._hosted = hosted
        self._moved = moved
        self._hold = redis.register_script(_HOLD)
        self._release = redis.register_script(_RELEASE)
        self._task: asyncio.Task[None] | None = None
        self._left = False

    async def start(self) -> None:
        await self.beat()
        self._task = asyncio.create_task(self._run())
        log.info("media worker registered", worker=self.worker.id, url=self.worker.url)

    async def hosts(self, consultation_id: str) -> bool:
        """True when this worker hosts (or has just claimed) the consultation."""
        return bool(await self._hold(keys=[room_key(consultation_id)], args=[self.worker.id, ROOM_TTL_SECONDS]))

    async def beat(self) -> None:
        hosted = list(self._hosted())
        lapse = int((time.time() + WORKER_TTL_SECONDS) * 1000)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(worker_key(self.worker.id), mapping={"url": self.worker.url, "rooms": len(hosted),
                                                          "pid": os.getpid()})
            pipe.pexpire(worker_key(self.worker.id), int(WORKER_TTL_SECONDS * 1000))
            pipe.zadd(WORKERS, {self.worker.id: lapse})
            pipe.zremrangebyscore(WORKERS, "-inf", int(time.time() * 1000))
            await pipe.execute()
        async with self.redis.pipeline(transaction=False) as pipe:  # one round trip for all rooms
            for consultation_id in hosted:
                await self._hold(keys=[room_key(consultation_id)], args=[self.worker.id, ROOM_TTL_SECONDS],
                                 client=pipe)
            held = await pipe.execute() if hosted else []
        lost = [c for c, holds in zip(hosted, held, strict=True) if not holds]
        if lost:
            log.warning("consultations placed on another worker; sending their clients there",
                        worker=self.worker.id, consultations=lost)
            await self._moved(lost)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                await self.beat()
            except Exception as exc:  # Redis away for a moment: keep serving, beat again
                log.warning("media worker heartbeat failed", worker=self.worker.id, error=str(exc))

    async def stop(self) -> None:
        """Leave the directory and give up this worker's rooms, so their clients are placed
        on another worker at once when they reconnect. Once: shutdown drains, then the lifespan ends."""
        if self._left:
            return
        self._left = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            for consultation_id in list(self._hosted()):
                await self._release(keys=[room_key(consultation_id)], args=[self.worker.id])
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zrem(WORKERS, self.worker.id)
                pipe.delete(worker_key(self.worker.id))
                await pipe.execute()
        log.info("media worker left the directory", worker=self.worker.id)
