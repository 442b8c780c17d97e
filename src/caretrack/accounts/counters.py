"""Counters behind sign-in throttling and request budgets: in Redis when configured (every
worker shares one count), in memory otherwise, and in memory while Redis is unreachable, so
that a Redis outage slows nobody's sign-in; back to Redis once it answers again.

Time comes from the caller (`at`, Unix seconds), never from Redis: fixed windows are part of
the key and failure records carry their own timestamps, so Redis expiry only clears garbage."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import ConnectionPool, Redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from caretrack.logs import get_logger

log = get_logger("caretrack.accounts.counters")

KEY_PREFIX = "caretrack-limits:"
# While Redis is down, try it again this often (not on every request: each try may wait for
# a connect timeout).
REDIS_RETRY_SECONDS = 5.0
# A sign-in must not hang on a Redis that accepts connections but never answers.
REDIS_TIMEOUT_SECONDS = 1.0
MEMORY_MAX_KEYS = 100_000
OUTAGE_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


@dataclass(frozen=True)
class Failures:
    count: int = 0
    last_at: float = 0.0


class Counters(Protocol):
    async def bump(self, key: str, at: float, ttl: float) -> int:
        """Add one to a counter that is forgotten `ttl` seconds after `at`; the new value."""

    async def record_failure(self, key: str, at: float, ttl: float) -> Failures: ...

    async def failures(self, key: str, at: float) -> Failures: ...

    async def clear(self, key: str) -> None: ...

    async def close(self) -> None: ...


class MemoryCounters:
    """One process's counts; expiry by the caller's clock."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, float]] = {}  # key -> (value, expires_at)
        self._failures: dict[str, tuple[Failures, float]] = {}

    def _prune(self, at: float) -> None:
        # A flood of distinct keys (made-up emails) must not grow memory without bound.
        for table in (self._counts, self._failures):
            if len(table) >= MEMORY_MAX_KEYS:
                for key in [k for k, (_, expires) in table.items() if expires <= at] or list(table)[:1000]:
                    table.pop(key, None)

    async def bump(self, key: str, at: float, ttl: float) -> int:
        self._prune(at)
        value, expires = self._counts.get(key, (0, 0.0))
        value = value + 1 if expires > at else 1
        self._counts[key] = (value, at + ttl)
        return value

    async def record_failure(self, key: str, at: float, ttl: float) -> Failures:
        self._prune(at)
        current = await self.failures(key, at)
        record = Failures(current.count + 1, at)
        self._failures[key] = (record, at + ttl)
        return record

    async def failures(self, key: str, at: float) -> Failures:
        record, expires = self._failures.get(key, (Failures(), 0.0))
        return record if expires > at else Failures()

    async def clear(self, key: str) -> None:
        self._failures.pop(key, None)

    async def close(self) -> None:
        return None


class RedisCounters:
    def __init__(self, url: str) -> None:
        # Our own pool with short timeouts and no retries: an outage must be noticed at once
        # (and answered from memory), not after redis-py's backoff.
        self._pool = ConnectionPool.from_url(url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                                             socket_timeout=REDIS_TIMEOUT_SECONDS, retry=Retry(NoBackoff(), 0))
        self.redis = Redis(connection_pool=self._pool)

    async def bump(self, key: str, at: float, ttl: float) -> int:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(KEY_PREFIX + key)
            pipe.expire(KEY_PREFIX + key, max(1, int(ttl)))
            value, _ = await pipe.execute()
        return int(value)

    async def record_failure(self, key: str, at: float, ttl: float) -> Failures:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(KEY_PREFIX + key, "count", 1)
            pipe.hset(KEY_PREFIX + key, "last_at", repr(at))
            pipe.expire(KEY_PREFIX + key, max(1, int(ttl)))
            count, _, _ = await pipe.execute()
        return Failures(int(count), at)

    async def failures(self, key: str, at: float) -> Failures:
        record = await self.redis.hgetall(KEY_PREFIX + key)
        if not record:
            return Failures()
        return Failures(int(record.get(b"count", 0)), float(record.get(b"last_at", 0.0)))

    async def clear(self, key: str) -> None:
        await self.redis.delete(KEY_PREFIX + key)

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

    async def record_failure(self, key: str, at: float, ttl: float) -> Failures:
        return await self._call("record_failure", key, at, ttl)

    async def failures(self, key: str, at: float) -> Failures:
        return await self._call("failures", key, at)

    async def clear(self, key: str) -> None:
        await self._call("clear", key)

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.close()
