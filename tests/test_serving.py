"""caretrack.site.serving: a lifespan that fails stops the server with one line saying why."""

from __future__ import annotations

import contextlib

import pytest
from starlette.applications import Starlette

from caretrack.site import serving
from tests.conftest import free_port


def failing_app(error: Exception) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app):
        raise error
        yield

    return Starlette(lifespan=lifespan)


async def never() -> None:
    raise AssertionError("the server should not have started")


async def nothing() -> None:
    return None


async def test_a_startup_error_is_the_whole_reason():
    app = failing_app(serving.StartupError("cannot reach the database: connection refused"))
    with pytest.raises(serving.ServeError) as caught:
        await serving.serve(app, serving.hypercorn_config("127.0.0.1", free_port()), drain=nothing, shutdown=never)
    assert str(caught.value) == "cannot reach the database: connection refused"


async def test_an_unexpected_failure_is_named_in_one_line():
    app = failing_app(RuntimeError("boom\nsecond line"))
    with pytest.raises(serving.ServeError) as caught:
        await serving.serve(app, serving.hypercorn_config("127.0.0.1", free_port()), drain=nothing, shutdown=never)
    assert str(caught.value) == "the app failed to start or stop: RuntimeError: boom"
