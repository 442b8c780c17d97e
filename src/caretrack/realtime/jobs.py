"""The bus's lifespan: the relay, the Redis subscriber and the safety nets run from start
to stop (caretrack.realtime.bus); drain closes the open sockets when shutdown begins."""

from __future__ import annotations

from starlette.applications import Starlette

from caretrack.realtime.bus import Bus, BusConfig


async def start(app: Starlette) -> None:
    config = getattr(app.state, "realtime_config", None) or BusConfig()
    app.state.realtime = Bus(app.state.settings, app.state.redis, config)
    await app.state.realtime.start()


async def drain(app: Starlette) -> None:
    await app.state.realtime.drain()


async def stop(app: Starlette) -> None:
    await app.state.realtime.stop()
