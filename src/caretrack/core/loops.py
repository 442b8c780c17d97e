"""Background loops that stop between passes. A task cancelled while Tortoise begins a
transaction never returns its pooled connection, and closing the PostgreSQL pool then stalls
(10 s); so shut-down asks each loop to finish its pass and cancels only what overruns."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

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


@dataclass
class Periodic:
    """One pass of `run` every `every` seconds, the first after `first`, until `stop`; a
    failed pass is logged and tried again at the next tick. Domains' jobs.py build one."""

    name: str
    run: Callable[[], Awaitable[object]]
    every: float
    first: float
    log: Any
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def start(self) -> Periodic:
        self._task = asyncio.create_task(self._loop(), name=self.name)
        return self

    def done(self) -> bool:
        return self._task is None or self._task.done()

    async def stop(self) -> None:
        await stop_loops([self._task] if self._task else [], self._stopping)

    async def _loop(self) -> None:
        await pause(self._stopping, self.first)
        while not self._stopping.is_set():
            try:
                await self.run()
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed pass is retried at the next tick
                self.log.exception(f"{self.name} failed")
            await pause(self._stopping, self.every)
