"""hypercorn as `caretrack serve` and `caretrack media` run it.

Two things hypercorn does not do for us:

* Shutdown order. On SIGTERM hypercorn stops listening, waits up to ``graceful_timeout``
  for every open connection to end, and only then runs the app's lifespan shutdown. A
  WebSocket never ends by itself, so without help every socket is cancelled at the
  timeout (the client sees 1011). Here the shutdown trigger first *drains* the app: it
  tells every socket it is going away and waits, briefly, for their close handshakes.
* Exit status. hypercorn's multi-process ``run`` returns 0 when a worker crashes. Here a
  worker that fails to start or dies stops the others, and the command exits 1 with one
  line saying which worker and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection, wait
from typing import Any

from hypercorn.asyncio.run import worker_serve  # the public `serve` cannot take pre-bound sockets
from hypercorn.config import Config, Sockets
from hypercorn.utils import LifespanFailureError, LifespanTimeoutError, wrap_app

from signalling.protocol import MAX_MESSAGE_BYTES

log = logging.getLogger("caretrack.site.serving")

GRACEFUL_TIMEOUT = 5.0
# Sockets get this long to finish their close handshakes (the drain counts against the
# graceful timeout, so this leaves room for requests in flight to end).
DRAIN_TIMEOUT = 3.0
# The largest message any endpoint accepts (signalling; /ws/events takes 1 KiB and checks
# that itself). hypercorn closes with 1009 as soon as a message grows past it, instead of
# buffering up to its default 16 MiB first.
MAX_WEBSOCKET_MESSAGE = MAX_MESSAGE_BYTES
# After a stop, a worker that has not exited by then is terminated.
STOP_TIMEOUT = GRACEFUL_TIMEOUT + 10.0

Drain = Callable[[], Awaitable[None]]
# A module-level callable (worker processes import it by name): the ASGI app and its drain.
Loader = Callable[[], tuple[Any, Drain]]


class StartupError(Exception):
    """The app cannot serve; the message says why and what to do."""


class ServeError(Exception):
    """The server stopped because it failed; the message is one line for the operator."""


def hypercorn_config(host: str, port: int) -> Config:
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None  # the app logs each request itself, with its request id
    config.errorlog = logging.getLogger("hypercorn.error")  # through our handler, once
    config.graceful_timeout = GRACEFUL_TIMEOUT
    config.websocket_max_message_size = MAX_WEBSOCKET_MESSAGE
    return config


async def serve(app: Any, config: Config, *, drain: Drain, shutdown: Callable[[], Awaitable[Any]],
                sockets: Sockets | None = None) -> None:
    """Serve `app` until `shutdown` returns, drain it, then stop; a failed lifespan raises ServeError."""
    graceful = config.graceful_timeout

    async def trigger() -> None:
        await shutdown()
        loop = asyncio.get_running_loop()
        began = loop.time()
        try:
            await asyncio.wait_for(drain(), DRAIN_TIMEOUT)
        except TimeoutError:
            log.warning("some sockets had not closed after %ss; stopping anyway", DRAIN_TIMEOUT)
        # hypercorn's graceful wait starts when this returns: the drain is part of it.
        config.graceful_timeout = max(graceful - (loop.time() - began), 1.0)

    try:
        await worker_serve(wrap_app(app, config.wsgi_max_body_size, "asgi"), config, sockets=sockets,
                           shutdown_trigger=trigger)
    except (LifespanFailureError, LifespanTimeoutError) as exc:
        raise ServeError(failure_reason(exc)) from None
    finally:
        config.graceful_timeout = graceful


def failure_reason(exc: BaseException) -> str:
    """One line: the app's own StartupError message, or what went wrong inside hypercorn's wrapper."""
    if isinstance(exc, LifespanTimeoutError):
        return str(exc).split(". ", 1)[0]
    # Starlette reports a failed lifespan from inside its `except` block, so the app's own
    # exception is the context of hypercorn's LifespanFailureError.
    cause = exc.__cause__ or exc.__context__
    if cause is not None and isinstance(exc, LifespanFailureError):
        if isinstance(cause, StartupError):
            return str(cause)
        log.error("the app's lifespan failed", exc_info=cause)
        return f"the app failed to start or stop: {type(cause).__name__}: {_first_line(cause)}"
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


def run(load: Loader, config: Config) -> None:
    """Serve in this process until SIGINT or SIGTERM."""
    sockets = _bind(config)
    app, drain = load()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(app, config, drain=drain, shutdown=stop.wait, sockets=sockets)

    try:
        asyncio.run(main())
    finally:
        for sock in [*sockets.secure_sockets, *sockets.insecure_sockets]:
            sock.close()


def supervise(load: Loader, config: Config, workers: int) -> None:
    """Run `workers` processes on shared sockets until SIGINT or SIGTERM; if one fails or
    dies, stop the rest and raise ServeError naming it."""
    context = multiprocessing.get_context("spawn")
    sockets = _bind(config)
    stop = context.Event()
    processes: dict[int, tuple[int, multiprocessing.process.BaseProcess, Connection]] = {}
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    failure: str | None = None
    try:
        for number in range(1, workers + 1):
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(target=_worker, name=f"caretrack-worker-{number}",
                                      args=(load, config, sockets, stop, sender))
            process.start()
            sender.close()
            processes[process.sentinel] = (number, process, receiver)
        deadline: float | None = None
        while processes:
            for sentinel in wait(list(processes), timeout=0.5):  # wakes to notice a stop signal
                number, process, receiver = processes.pop(sentinel)
                process.join()
                if failure is None and (process.exitcode != 0 or not stop.is_set()):
                    failure = f"worker {number} (pid {process.pid}) {_ended(process.exitcode, receiver)}"
                    stop.set()
                receiver.close()
            if stop.is_set() and deadline is None:
                deadline = time.monotonic() + STOP_TIMEOUT
            elif deadline is not None and time.monotonic() >= deadline:
                for _, process, _ in processes.values():
                    log.warning("worker pid %s did not stop in %ss; killing it", process.pid, STOP_TIMEOUT)
                    process.kill()
                deadline = time.monotonic() + STOP_TIMEOUT
    finally:
        stop.set()
        for _, process, _ in processes.values():
            process.kill()
            process.join(5)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sock in [*sockets.secure_sockets, *sockets.insecure_sockets]:
            sock.close()
    if failure is not None:
        raise ServeError(f"{failure}; the other workers were stopped")


def _bind(config: Config) -> Sockets:
    try:
        return config.create_sockets()
    except OSError as exc:
        raise ServeError(f"cannot listen on {', '.join(config.bind)}: {exc.strerror or exc}") from None


def _ended(exitcode: int | None, receiver: Connection) -> str:
    with contextlib.suppress(EOFError, OSError):
        if receiver.poll():
            return f"failed: {receiver.recv()}"
    if exitcode is not None and exitcode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-exitcode).name}"
    return f"exited with status {exitcode}" if exitcode else "exited on its own"


def _worker(load: Loader, config: Config, sockets: Sockets, stop: Any, report: Connection) -> None:
    """One worker process: serve until the supervisor (or a SIGTERM of its own) says stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the supervisor decides

    async def main(app: Any, drain: Drain) -> None:
        terminated = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, terminated.set)

        async def shutdown() -> None:
            while not (stop.is_set() or terminated.is_set()):  # a multiprocessing Event cannot be awaited
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(terminated.wait(), 0.1)

        await serve(app, config, drain=drain, shutdown=shutdown, sockets=sockets)

    try:
        app, drain = load()
        asyncio.run(main(app, drain))
    except ServeError as exc:
        reason = str(exc)
    except Exception as exc:
        log.error("worker failed", exc_info=exc)
        reason = f"{type(exc).__name__}: {_first_line(exc)}"
    else:
        return
    with contextlib.suppress(OSError):
        report.send(reason)
    sys.exit(1)
