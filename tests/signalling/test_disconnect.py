"""The host application takes a caller out of a call (signed out, deactivated): their socket
closes with the code and reason it gives, they leave the relay room, and the others are told.
Through the endpoint that hosts calls and through the proxy in front of a media worker."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

import media
import signalling
from signalling import protocol as p
from signalling.proxy import SignallingProxy, Worker, worker_service
from tests.conftest import free_port, serve_in_loop, stop_serving
from tests.media.helpers import relay_config

from .conftest import TEST_LIMITS, RecordingHooks, SignalServer, allowed_origin, authenticate, authorize, open_socket
from .test_call import admitted_call
from .test_proxy import KEY, MemoryDirectory, _healthz

REASON = "Your account was deactivated."


class Served(SignalServer):
    """A signalling server whose test route remembers each caller's server-side websocket."""

    front: signalling.SignallingService | SignallingProxy
    sockets: dict[str, WebSocket]


def remembering(front, sockets: dict[str, WebSocket]):
    async def endpoint(websocket: WebSocket) -> None:
        sockets[websocket.headers.get("x-test-user", "")] = websocket
        await front.endpoint(websocket)

    return endpoint


async def serve(routes: list[tuple[str, Callable[[WebSocket], Awaitable[None]]]]) -> tuple[str, tuple]:
    port = free_port()
    app = Starlette(routes=[Route("/healthz", _healthz), *(WebSocketRoute(path, ep) for path, ep in routes)])
    task, stop = await serve_in_loop(app, port)
    return f"ws://127.0.0.1:{port}", (task, stop)


@contextlib.asynccontextmanager
async def hosting(tmp_path: Path) -> AsyncIterator[Served]:
    """The endpoint that hosts calls (the embedded default)."""
    relay = media.Relay(relay_config(recordings_dir=tmp_path / "recordings"))
    hooks = RecordingHooks()
    service = signalling.SignallingService(relay, authenticate=authenticate, allowed_origin=allowed_origin,
                                           authorize=authorize, hooks=hooks, limits=TEST_LIMITS)
    sockets: dict[str, WebSocket] = {}
    base, stopping = await serve([("/ws/signal", remembering(service, sockets))])
    served = Served(base + "/ws/signal", service, relay, hooks, tmp_path / "recordings")
    served.front, served.sockets = service, sockets
    yield served
    await service.close()
    await relay.close()
    await stop_serving(*stopping)
    assert relay.peer_connections == {}


@contextlib.asynccontextmanager
async def proxied(tmp_path: Path) -> AsyncIterator[Served]:
    """A proxy (a web process's /ws/signal) in front of one media worker."""
    relay = media.Relay(relay_config(recordings_dir=tmp_path / "recordings"))
    hooks = RecordingHooks()
    worker_side = worker_service(relay, ticket_key=KEY, hooks=hooks, limits=TEST_LIMITS)
    worker_base, worker_stopping = await serve([("/signal", worker_side.endpoint)])
    proxy = SignallingProxy(MemoryDirectory([Worker("w1", worker_base + "/signal")]), ticket_key=KEY,
                            authenticate=authenticate, allowed_origin=allowed_origin, authorize=authorize,
                            limits=TEST_LIMITS)
    sockets: dict[str, WebSocket] = {}
    base, stopping = await serve([("/ws/signal", remembering(proxy, sockets))])
    served = Served(base + "/ws/signal", worker_side, relay, hooks, tmp_path / "recordings")
    served.front, served.sockets = proxy, sockets
    yield served
    await proxy.close()
    await stop_serving(*stopping)
    await worker_side.close()
    await relay.close()
    await stop_serving(*worker_stopping)
    assert relay.peer_connections == {}


@pytest.fixture(params=[hosting, proxied], ids=["hosting", "proxied"])
async def served(request, tmp_path: Path) -> AsyncIterator[Served]:
    async with request.param(tmp_path) as running:
        yield running


async def test_a_disconnected_caller_leaves_the_call_and_its_media(served: Served, clients) -> None:
    host, patient = await admitted_call(served, clients, "c-kick")
    room = served.relay.room("c-kick")
    assert set(room.participants) == {"doc", "pat"}

    assert "pat" in {prefix.rsplit("/", 1)[1].rstrip("]") for prefix in served.relay.peer_connections.values()}
    assert served.front.disconnect(served.sockets["pat"], p.CLOSE_REFUSED, REASON) is True
    assert await patient.wait_closed(5) == (p.CLOSE_REFUSED, REASON)
    assert [(e.code, e.message) for e in patient.of(p.Error)] == [(p.CLOSE_REFUSED, REASON)]
    # the relay dropped the patient's connection; the host is told, and stops receiving them
    await host.wait(p.Participants, lambda m: [i.participant for i in m.participants] == ["doc"], timeout=5)
    assert set(room.participants) == {"doc"}
    assert [prefix for prefix in served.relay.peer_connections.values() if prefix.endswith("/pat]")] == []
    assert not host.closed.done()


async def test_a_socket_disconnected_before_it_joins_is_closed(served: Served, clients) -> None:
    early = await open_socket(served, "pat")  # the handshake is done: the endpoint serves it
    clients.append(early)
    assert served.front.disconnect(served.sockets["pat"], p.CLOSE_UNAUTHENTICATED, "You were signed out.")
    assert await early.wait_closed(5) == (p.CLOSE_UNAUTHENTICATED, "You were signed out.")


async def test_disconnecting_a_socket_that_is_not_served_does_nothing(served: Served, clients) -> None:
    host, patient = await admitted_call(served, clients, "c-stay")
    await patient.send({"type": "leave"})
    assert (await patient.wait_closed(5))[0] == p.CLOSE_NORMAL
    assert served.front.disconnect(served.sockets["pat"], p.CLOSE_REFUSED, REASON) is False
    await host.wait(p.Participants, lambda m: [i.participant for i in m.participants] == ["doc"], timeout=5)
    assert not host.closed.done()

