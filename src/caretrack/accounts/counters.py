"""Counters behind sign-in throttling and request budgets: in Redis when configured (every
worker shares one count), in memory otherwise, and in memory while Redis is unreachable, so
that a Redis outage slows nobody's sign-in; back to Redis once it answers again.

Time comes from the caller (`at`, Unix seconds), never from Redis: fixed windows are part of
the key and failure records carry their own timestamps, so Redis expiry only clears garbage.

A try is counted before its secret is checked (`reserve`): reading the counts and adding this
try is one atomic step (a Lua script in Redis; in memory, code with no await inside), so
parallel tries cannot all pass a check that each of them reads before any of them counts.
`reserve` is also the one place that forgets failures: a record whose last try is older than
`forget_after` counts as empty."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import ConnectionPool, Redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from caretrack.core.logs import get_logger

log = get_logger("caretrack.accounts.counters")

KEY_PREFIX = "caretrack-limits:"
# While Redis is down, try it again this often (not on every request: each try may wait for
# a connect timeout).
REDIS_RETRY_SECONDS = 5.0
# A sign-in must not hang on a Redis that accepts connections but never answers.
REDIS_TIMEOUT_SECONDS = 1.0
MEMORY_MAX_KEYS = 100_000
# When memory is full of records that are all still throttling, a new key is refused for this
# long rather than one of them dropped (dropping one would end a victim's wait).
MEMORY_FULL_RETRY_SECONDS = 60.0
OUTAGE_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


@dataclass(frozen=True)
class Reservation:
    """The outcome of `reserve`: `blocked` is the index of the key whose wait refused the try
    (None when the try was counted), `counts` the failure counts including this try."""

    blocked: int | None = None
    retry_after: float = 0.0
    counts: tuple[int, ...] = ()


class Counters(Protocol):
    async def bump(self, key: str, at: float, ttl: float) -> int:
        """Add one to a counter that is forgotten `ttl` seconds after `at`; the new value."""

    async def reserve(self, keys: Sequence[str], delays: Sequence[Sequence[int]], at: float,
                      forget_after: float) -> Reservation:
        """Refuse while any key's wait runs (`delays[i][count]`, the last entry repeating);
        otherwise count this try on every key."""

    async def release(self, clear: Sequence[str], undo: Sequence[str]) -> None:
        """A try succeeded: forget the `clear` records, and take this try back from `undo`."""

    async def close(self) -> None: ...


def _wait(delays: Sequence[int], count: int, last_at: float, at: float) -> float:
    return last_at + delays[min(count, len(delays) - 1)] - at if count else 0.0


class MemoryCounters:
    """One process's counts; expiry by the caller's clock."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, float]] = {}  # key -> (value, expires_at)
        # key -> (count, last_at, throttled_until); kept in order of last use
        self._failures: dict[str, tuple[int, float, float]] = {}

    async def bump(self, key: str, at: float, ttl: float) -> int:
        if key not in self._counts and len(self._counts) >= MEMORY_MAX_KEYS:
            # Budgets last an hour at most: expired ones go first, else the oldest.
            expired = [k for k, (_, expires) in self._counts.items() if expires <= at]
            for old in expired or list(self._counts)[:1000]:
                del self._counts[old]
        value, expires = self._counts.get(key, (0, 0.0))
        value = value + 1 if expires > at else 1
        self._counts[key] = (value, at + ttl)
        return value

    def _make_room(self, needed: int, keep: Sequence[str], at: float, forget_after: float) -> bool:
        """Room for `needed` more failure records: forgotten records go first, then ones that
        are not throttling (oldest first, a thousand at a time so that a full table is not
        scanned at every try); one that is still throttling is never dropped, so flooding
        made-up emails cannot end a victim's wait. False when there is still no room."""
        excess = len(self._failures) + needed - MEMORY_MAX_KEYS
        if excess <= 0:
            return True
        forgotten = [k for k, (_, last, _) in self._failures.items() if at - last > forget_after and k not in keep]
        idle = [k for k, (_, last, until) in self._failures.items()
                if until <= at and at - last <= forget_after and k not in keep]
        for key in (forgotten + idle)[:max(excess, 1000)]:
            del self._failures[key]
        return len(self._failures) + needed <= MEMORY_MAX_KEYS

    async def reserve(self, keys: Sequence[str], delays: Sequence[Sequence[int]], at: float,
                      forget_after: float) -> Reservation:
        # No await in here: under one event loop, reading and counting are one step.
        counts = []
        for index, key in enumerate(keys):
            count, last_at, _ = self._failures.get(key, (0, 0.0, 0.0))
            if at - last_at > forget_after:
                count = 0
            remaining = _wait(delays[index], count, last_at, at)
            if remaining > 0:
                return Reservation(index, remaining)
            counts.append(count + 1)
        new = [index for index, key in enumerate(keys) if key not in self._failures]
        if new and not self._make_room(len(new), keys, at, forget_after):
            # Full of records that are all throttling: refuse this newcomer rather than end a wait.
            return Reservation(new[0], MEMORY_FULL_RETRY_SECONDS)
        for key, count, table in zip(keys, counts, delays, strict=True):
            self._failures.pop(key, None)  # re-inserted last: the dict stays in order of use
            self._failures[key] = (count, at, at + _wait(table, count, at, at))
        return Reservation(None, 0.0, tuple(counts))

    async def release(self, clear: Sequence[str], undo: Sequence[str]) -> None:
        for key in clear:
            self._failures.pop(key, None)
        for key in undo:
            if key in self._failures:
                count, last_at, until = self._failures[key]
                self._failures[key] = (max(0, count - 1), last_at, until)

    async def close(self) -> None:
        return None


# KEYS: failure records (hashes of count and last_at). ARGV: at, forget_after, then for each
# key the length of its delay table and the table. One round trip, atomic.
RESERVE_SCRIPT = """
local at = tonumber(ARGV[1])
local forget = tonumber(ARGV[2])
local pos = 3
local counts = {}
for i, key in ipairs(KEYS) do
  local n = tonumber(ARGV[pos])
  local record = redis.call('HMGET', key, 'count', 'last_at')
  local count = tonumber(record[1]) or 0
  local last = tonumber(record[2]) or 0
  if at - last > forget then count = 0 end
  if count > 0 then
    local wait = last + tonumber(ARGV[pos + math.min(count, n - 1) + 1]) - at
    if wait > 0 then return {i, tostring(wait)} end
  end
  counts[i] = count + 1
  pos = pos + n + 1
end
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 'count', counts[i], 'last_at', ARGV[1])
  redis.call('EXPIRE', key, math.max(1, math.ceil(forget)))
end
return {0, unpack(counts)}
"""


class RedisCounters:
    def __init__(self, url: str) -> None:
        # Our own pool with short timeouts and no retries: an outage must be noticed at once
        # (and answered from memory), not after redis-py's backoff.
        self._pool = ConnectionPool.from_url(url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                                             socket_timeout=REDIS_TIMEOUT_SECONDS, retry=Retry(NoBackoff(), 0))
        self.redis = Redis(connection_pool=self._pool)
        self._reserve = self.redis.register_script(RESERVE_SCRIPT)

    async def bump(self, key: str, at: float, ttl: float) -> int:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(KEY_PREFIX + key)
            pipe.expire(KEY_PREFIX + key, max(1, int(ttl)))
            value, _ = await pipe.execute()
        return int(value)

    async def reserve(self, keys: Sequence[str], delays: Sequence[Sequence[int]], at: float,
                      forget_after: float) -> Reservation:
        args: list[str | int] = [repr(at), repr(forget_after)]
        for table in delays:
            args += [len(table), *table]
        result = await self._reserve(keys=[KEY_PREFIX + k for k in keys], args=args)
        if int(result[0]):
            return Reservation(int(result[0]) - 1, float(result[1]))
        return Reservation(None, 0.0, tuple(int(c) for c in result[1:]))

    async def release(self, clear: Sequence[str], undo: Sequence[str]) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in clear:
                pipe.delete(KEY_PREFIX + key)
            for key in undo:
                pipe.hincrby(KEY_PREFIX + key, "count", -1)
            await pipe.execute()

    async def close(self) -> None:
        await self.redis.aclose()
        await self._pool.aclose()


class ResilientCounters:
    """Redis, or memory while Redis cannot be reached; one warning per outage."""

    def __init__(self, redis_url: str | None, clock: Callable[[], float]) -> None:
        self.redis = RedisCounters(redis_url) if redis_url else None
        self.memory = MemoryCounters()
        self.clock = clock
        self.down_since: float | None = None
        self._last_try = 0.0

    @property
    def using_memory(self) -> bool:
        return self.redis is None or self.down_since is not None

    async def _call(self, name: str, *args):
        if self.redis is not None:
            moment = self.clock()
            if self.down_since is None or moment - self._last_try >= REDIS_RETRY_SECONDS:
                self._last_try = moment
                try:
                    result = await getattr(self.redis, name)(*args)
                except OUTAGE_ERRORS as exc:
                    if self.down_since is None:
                        self.down_since = moment
                        log.warning("Redis unreachable: sign-in limits are counted in this process's memory "
                                    "until it answers", error=f"{type(exc).__name__}: {exc}")
                else:
                    if self.down_since is not None:
                        log.warning("Redis answers again: sign-in limits are shared through it once more",
                                    outage_seconds=round(moment - self.down_since, 1))
                        self.down_since = None
                    return result
        return await getattr(self.memory, name)(*args)

    async def bump(self, key: str, at: float, ttl: float) -> int:
        return await self._call("bump", key, at, ttl)

    async def reserve(self, keys: Sequence[str], delays: Sequence[Sequence[int]], at: float,
                      forget_after: float) -> Reservation:
        return await self._call("reserve", keys, delays, at, forget_after)

    async def release(self, clear: Sequence[str], undo: Sequence[str]) -> None:
        await self._call("release", clear, undo)

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.close()
