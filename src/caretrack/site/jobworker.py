"""`caretrack worker`: one job-worker process (CARETRACK_JOBS_MODE=workers). Run any number:
they share the job table, each job is claimed by one of them under a lease, and the jobs of a
worker that is killed are taken over by another once their leases run out. SIGTERM or SIGINT
lets the running jobs finish (a grace period) and hands back the rest at once."""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import socket
from datetime import timedelta

from caretrack.core.logs import get_logger
from caretrack.core.queue import Runner
from caretrack.core.queue.registry import HANDLERS
from caretrack.core.settings import Settings
from caretrack.site import serving, startup
from caretrack.site.app import DOMAINS

log = get_logger("caretrack.worker")
STOP_GRACE_SECONDS = 20.0


def load_handlers() -> list[str]:
    """Import every domain's jobs module (each registers its handlers); the kinds known."""
    for name in DOMAINS:
        if name.endswith(".jobs"):
            importlib.import_module(name)
    return sorted(HANDLERS)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class WorkerDied(serving.StartupError):
    """The runner's loop ended without being asked to: exit non-zero, for the supervisor."""


async def serve(settings: Settings, worker_id: str, concurrency: int) -> None:
    kinds = load_handlers()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with startup.started(settings, refusal="refusing to start"):
        runner = Runner(worker_id, settings, lease=timedelta(seconds=settings.job_lease_seconds),
                        batch=concurrency).start()
        print(f"CareTrack job worker {worker_id} running {len(kinds)} job kinds", flush=True)
        log.info("job worker started", worker=worker_id, kinds=kinds)
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({stopping, runner.task}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if runner.task.done() and not stop.is_set():  # a worker doing nothing must not look alive
            error = runner.task.exception() if not runner.task.cancelled() else None
            raise WorkerDied(f"job worker {worker_id}: its runner stopped unexpectedly ({error!r})")
        log.info("job worker stopping", worker=worker_id)
        await runner.stop(grace=STOP_GRACE_SECONDS)
    print(f"CareTrack job worker {worker_id} stopped", flush=True)


def run(settings: Settings, worker_id: str | None, concurrency: int) -> int:
    asyncio.run(serve(settings, worker_id or default_worker_id(), concurrency))
    return 0
