"""The one start-up every process shares (web app, media worker): keys, database, migrations
current, Redis. Logging is configured by the command before any of this runs."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import redis.asyncio as aioredis

from caretrack.core import crypto, db
from caretrack.core.settings import Settings
from caretrack.site.serving import StartupError


@contextlib.asynccontextmanager
async def started(settings: Settings, *, refusal: str = "refusing to serve",
                  error: type[StartupError] = StartupError) -> AsyncIterator[aioredis.Redis | None]:
    """Keys configured, the database open with its migrations current, and Redis reached
    when CARETRACK_REDIS_URL is set (yielded; None otherwise). Closed in reverse on exit.
    A failure raises `error` with one line saying why."""
    crypto.configure(settings.phi_keys)
    try:
        await db.start(settings)
    except db.DatabaseUnavailable as exc:
        raise error(f"cannot reach the database: {exc}") from None
    try:
        status = await db.migration_status()
        if not status.current:
            raise error(f"{refusal}: {status.message()}")
        redis = await connect_redis(settings, error)
        try:
            yield redis
        finally:
            if redis is not None:
                await redis.aclose()
    finally:
        await db.stop()


async def connect_redis(settings: Settings, error: type[StartupError] = StartupError) -> aioredis.Redis | None:
    """A pinged client for CARETRACK_REDIS_URL, or None when it is not set."""
    if not settings.redis_url:
        return None
    client = aioredis.Redis.from_url(settings.redis_url, health_check_interval=15)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        raise error(f"cannot reach Redis at CARETRACK_REDIS_URL: {exc}") from None
    return client
