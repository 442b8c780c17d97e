"""/healthz (the process is alive), /readyz (it can serve: database, Redis, migrations),
/metrics (Prometheus)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from caretrack import db, metrics


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "alive"})


async def readyz(request: Request) -> Response:
    checks: dict[str, str] = {}
    problems: list[str] = []
    try:
        status = await db.migration_status()
        checks["database"] = "ok"
        if status.current:
            checks["migrations"] = "ok"
        else:
            checks["migrations"] = "behind"
            problems.append(status.message())
    except db.DatabaseUnavailable as exc:
        checks["database"] = "unreachable"
        problems.append(f"database unreachable: {exc}")
    redis = request.app.state.redis
    if redis is None:
        checks["redis"] = "not configured (in-process bus)"
    else:
        try:
            await asyncio.wait_for(redis.ping(), 2)
            checks["redis"] = "ok"
        except Exception as exc:  # redis-py raises several unrelated types
            checks["redis"] = "unreachable"
            problems.append(f"redis unreachable: {type(exc).__name__}: {exc}")
    directory = getattr(request.app.state, "media_directory", None)
    if directory is None:
        checks["media"] = "embedded relay"
    elif checks.get("redis") == "ok":
        workers = await directory.live_workers()
        checks["media"] = f"{len(workers)} worker(s)" if workers else "no workers"
        if not workers:
            problems.append("no media worker is registered: start `caretrack media` (consultations cannot start)")
    if problems:
        return JSONResponse({"status": "unavailable", "checks": checks, "problems": problems}, 503)
    return JSONResponse({"status": "ready", "checks": checks})


async def metrics_endpoint(request: Request) -> Response:
    body, content_type = metrics.render()
    return PlainTextResponse(body, media_type=content_type)


routes = [
    Route("/healthz", healthz),
    Route("/readyz", readyz),
    Route("/metrics", metrics_endpoint),
]
