"""The bus's lifespan: the relay, the Redis subscriber and the safety nets run from start
to stop (caretrack.realtime.bus); drain closes the open sockets when shutdown begins. And the
hourly job that prunes events older than the retention window."""

from __future__ import annotations

from datetime import timedelta

from starlette.applications import Starlette

from caretrack.core.logs import get_logger
from caretrack.core.outbox import store as outbox
from caretrack.core.queue import JobContext, job
from caretrack.realtime.bus import Bus, BusConfig

log = get_logger("caretrack.realtime")


@job("realtime.prune_events", every=timedelta(hours=1))
async def prune_events(ctx: JobContext) -> None:
    removed = await outbox.prune(timedelta(days=ctx.settings.event_retention_days), at=ctx.at)
    if removed:
        log.info("pruned old events", count=removed)


async def start(app: Starlette) -> None:
    config = getattr(app.state, "realtime_config", None) or BusConfig()
    app.state.realtime = Bus(app.state.settings, app.state.redis, config)
    await app.state.realtime.start()


async def drain(app: Starlette) -> None:
    await app.state.realtime.drain()


async def stop(app: Starlette) -> None:
    await app.state.realtime.stop()
