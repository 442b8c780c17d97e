"""/healthz (the process is alive), /readyz (it can serve: database, Redis, migrations),
/metrics (Prometheus)."""

from __future__ import annotations

import asyncio
import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from caretrack.core import db, metrics
from caretrack.core.errors import CareTrackError, NotFound


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
    settings = request.app.state.settings
    if settings.metrics_token is None:
        if settings.production:
            # Not served, rather than a refusal to start: metrics are optional, the site is not.
            raise NotFound("/metrics is not served in production without CARETRACK_METRICS_TOKEN; set it to "
                           "a long random value and give it to Prometheus as a bearer token.")
    elif not _bearer_matches(request, settings.metrics_token):
        raise CareTrackError("Send the metrics token: Authorization: Bearer <CARETRACK_METRICS_TOKEN>.",
                             code="not_authenticated", status_code=401)
    body, content_type = metrics.render()
    return PlainTextResponse(body, media_type=content_type, headers={"cache-control": "no-store"})


def _bearer_matches(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


routes = [
    Route("/healthz", healthz),
    Route("/readyz", readyz),
    Route("/metrics", metrics_endpoint),
]
