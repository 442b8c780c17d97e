"""`caretrack media`: one media worker process, which hosts consultations when
``CARETRACK_MEDIA_MODE=workers``.

It serves the signalling protocol on ``/signal`` to web processes only (each connection
carries a join ticket they signed), runs the relay and records, and registers itself in
Redis so that web processes place consultations on it.  Chat, consent, admissions,
recordings and the end of a call are written to the database as in the embedded mode.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute

import media
from caretrack.consultations import guests, service
from caretrack.consultations.cluster import Registration
from caretrack.core.logs import get_logger
from caretrack.core.settings import Settings
from caretrack.site import serving, startup
from media.tuning import tune_garbage_collector
from signalling import protocol as p
from signalling.proxy import Worker, worker_service

log = get_logger("caretrack.media")


class WorkerStartupError(serving.StartupError):
    """The worker cannot start; the message says why."""


def default_worker_id(port: int) -> str:
    return f"{socket.gethostname()}:{port}"


def create_worker_app(settings: Settings, worker: Worker) -> Starlette:
    relay = media.Relay(service.relay_config(settings))
    registration: Registration | None = None

    async def hosts(consultation_id: str) -> bool:
        return registration is not None and await registration.hosts(consultation_id)

    signalling = worker_service(relay, ticket_key=settings.media_ticket_key, hooks=guests.CallHooks(settings),
                                hosts=hosts)

    async def moved(consultation_ids: list[str]) -> None:
        for consultation_id in consultation_ids:
            consultation = signalling.consultations.get(consultation_id)
            if consultation is not None:
                await consultation.evict(p.CLOSE_TRY_AGAIN, "this consultation moved to another media server; "
                                         "reconnecting")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal registration
        async with startup.started(settings, refusal="refusing to start", error=WorkerStartupError) as redis:
            if redis is None:  # settings refuse media_mode=workers without it; said again here
                raise WorkerStartupError("media workers need CARETRACK_REDIS_URL (their directory is in Redis)")
            registration = Registration(redis, worker, hosted=lambda: signalling.consultations.keys(), moved=moved)
            await registration.start()
            try:
                yield
            finally:
                await registration.stop()
                await signalling.close()
                await relay.close()

    async def drain() -> None:
        """Leave the directory first, so that the clients told to reconnect are placed elsewhere."""
        if registration is not None:
            await registration.stop()
        await signalling.close()

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "alive", "worker": worker.id,
                             "consultations": len(signalling.consultations)})

    app = Starlette(routes=[Route("/healthz", healthz), WebSocketRoute("/signal", signalling.endpoint)],
                    lifespan=lifespan)
    app.state.relay = relay
    app.state.signalling = signalling
    app.state.drain = drain
    return app


def run(settings: Settings, host: str, port: int, worker_id: str | None, advertise: str | None) -> int:
    """Serve one worker until SIGINT/SIGTERM; its calls' clients then reconnect elsewhere."""
    worker = Worker(worker_id or default_worker_id(port), advertise or f"ws://{host}:{port}/signal")
    app = create_worker_app(settings, worker)
    config = serving.hypercorn_config(host, port)
    config.errorlog = None

    def load() -> tuple[Starlette, serving.Drain]:
        tune_garbage_collector()
        return app, app.state.drain

    print(f"CareTrack media worker {worker.id} serving {worker.url}", flush=True)
    serving.run(load, config)
    return 0
