"""Background loops that stop between passes. A task cancelled while Tortoise begins a
transaction never returns its pooled connection, and closing the PostgreSQL pool then stalls
(10 s); so shut-down asks each loop to finish its pass and cancels only what overruns."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection

STOP_GRACE_SECONDS = 5.0


async def pause(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep, or return at once when `stopping` is set."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


async def stop_loops(tasks: Collection[asyncio.Task], stopping: asyncio.Event,
                     grace: float = STOP_GRACE_SECONDS) -> None:
    """Set `stopping`, give the loops `grace` seconds to end their pass, cancel the rest, and
    wait until all have ended."""
    stopping.set()
    if not tasks:
        return
    _, overran = await asyncio.wait(tasks, timeout=grace)
    for task in overran:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
