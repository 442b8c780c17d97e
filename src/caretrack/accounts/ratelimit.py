"""Failed-login limits per account and per client address (the `limits` library: memory
on the embedded default, Redis when configured, so every worker shares one count)."""

from __future__ import annotations

from limits import RateLimitItemPerHour
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import ConnectionPool

from caretrack.errors import RateLimited

FAILURES_PER_HOUR = 100


class LoginLimiter:
    def __init__(self, redis_url: str | None, failures_per_hour: int = FAILURES_PER_HOUR) -> None:
        # Our own pool, so that close() can release its connections (the library has no close).
        self._pool = ConnectionPool.from_url(redis_url) if redis_url else None
        self.storage: Storage = (
            RedisStorage("async+" + redis_url, implementation="redispy", key_prefix="caretrack-login",
                         connection_pool=self._pool)
            if redis_url else MemoryStorage()
        )
        self.limiter = MovingWindowRateLimiter(self.storage)
        self.item = RateLimitItemPerHour(failures_per_hour)

    async def check(self, email: str, address: str | None) -> None:
        """Refuse before the password is even checked once either budget is spent."""
        for scope, key in (("account", email.lower()), ("address", address or "unknown")):
            if not await self.limiter.test(self.item, scope, key):
                stats = await self.limiter.get_window_stats(self.item, scope, key)
                import time

                minutes = max(1, int((stats.reset_time - time.time()) // 60) + 1)
                what = "this account" if scope == "account" else "your network address"
                raise RateLimited(
                    f"Too many failed sign-ins for {what}: sign-in is locked for about {minutes} "
                    "minute(s). Reset your password if you have forgotten it."
                )

    async def failed(self, email: str, address: str | None) -> bool:
        """Count a failure; True when this one used up the account's budget (now locked)."""
        account_ok = await self.limiter.hit(self.item, "account", email.lower())
        await self.limiter.hit(self.item, "address", address or "unknown")
        return account_ok and not await self.limiter.test(self.item, "account", email.lower())

    async def reset(self) -> None:
        await self.storage.reset()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
