"""A real `caretrack serve` stopped with SIGTERM while sockets are open: every client is
told 1001 (going away), the process exits cleanly within the graceful timeout, and its
logs hold no traceback."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys

import pytest
import websockets

from caretrack.core.roles import Role
from caretrack.realtime.sockets import CLOSE_GOING_AWAY, GOING_AWAY
from caretrack.site.serving import GRACEFUL_TIMEOUT, STOP_TIMEOUT
from signalling import protocol as p
from tests.conftest import free_port
from tests.consultations.conftest import make_appointment
from tests.realtime.conftest import (
    connect,
    make_user,
    open_socket,
    sign_in,
    start_web_process,
    stop_web_process,
    subprocess_env,
)
from tests.signalling.conftest import SignalClient

SOCKETS = 100  # the scenario: 100 open /ws/events when SIGTERM arrives


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sigterm_tells_every_open_socket_1001_and_exits_cleanly_in_time(database):
    users = [await make_user() for _ in range(5)]
    cookies = [await sign_in(user, database) for user in users]
    web = await start_web_process(database, None)
    clients = []
    try:
        for n in range(SOCKETS):
            clients.append(await connect(web.ws_url, cookies[n % len(cookies)]))
        # and one that is still in its handshake: it got hello but has not resumed yet
        shy = await open_socket(web.ws_url, cookies[0])
        assert json.loads(await asyncio.wait_for(shy.recv(), 5))["type"] == "hello"
        web.process.send_signal(signal.SIGTERM)
        closes = await asyncio.gather(*(client.wait_closed(GRACEFUL_TIMEOUT * 2) for client in clients))
        await asyncio.wait_for(shy.wait_closed(), GRACEFUL_TIMEOUT * 2)
        closes.append((shy.close_code, shy.close_reason))
        loop = asyncio.get_running_loop()
        try:
            code = await loop.run_in_executor(None, web.process.wait, GRACEFUL_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"caretrack serve was still running {GRACEFUL_TIMEOUT}s after SIGTERM")
        output = web.output()
    finally:
        stop_web_process(web)
    assert set(closes) == {(CLOSE_GOING_AWAY, GOING_AWAY)}, closes
    assert code == 0, output[-3000:]
    assert "Traceback" not in output and "CancelledError" not in output, output[-3000:]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_message_far_over_the_limit_is_refused_before_it_is_buffered(database):
    """hypercorn itself closes with 1009 once a message passes the largest limit (64 KiB)."""
    cookie = await sign_in(await make_user(), database)
    web = await start_web_process(database, None)
    try:
        ws = await open_socket(web.ws_url, cookie)
        hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert hello["type"] == "hello"
        with pytest.raises(websockets.ConnectionClosed):
            await ws.send("x" * (2 * 2**20))
            await asyncio.wait_for(ws.recv(), 10)
        await asyncio.wait_for(ws.wait_closed(), 10)
        assert ws.close_code == 1009
        assert ws.close_reason == ""  # hypercorn's close: the app never saw the message
    finally:
        stop_web_process(web)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sigterm_closes_calls_with_1012_so_their_clients_reconnect(database):
    """The embedded relay's /ws/signal: a restart is not the end of the call (see README)."""
    doctor, patient = await make_user(Role.DOCTOR), await make_user(Role.PATIENT)
    appointment = await make_appointment(doctor, patient)
    patient_cookie = await sign_in(patient, database)
    web = await start_web_process(database, None)
    try:
        ws = await websockets.connect(web.url.replace("http", "ws", 1) + "/ws/signal", origin=web.url,
                                      additional_headers={"cookie": patient_cookie}, open_timeout=5)
        call = SignalClient("patient", ws)
        call.start()
        await call.send({"type": "join", "consultation": str(appointment.id)})
        await call.wait(p.Welcome)
        events = await connect(web.ws_url, patient_cookie)
        # and a socket that has not sent its join yet
        ws = await websockets.connect(web.url.replace("http", "ws", 1) + "/ws/signal", origin=web.url,
                                      additional_headers={"cookie": patient_cookie}, open_timeout=5)
        unjoined = SignalClient("patient", ws)
        unjoined.start()
        web.process.send_signal(signal.SIGTERM)
        for client in (call, unjoined):
            code, reason = await client.wait_closed(GRACEFUL_TIMEOUT * 2)
            assert code == p.CLOSE_RESTARTING and "reconnecting" in reason
        assert await events.wait_closed(GRACEFUL_TIMEOUT * 2) == (CLOSE_GOING_AWAY, GOING_AWAY)
        exit_code = await asyncio.get_running_loop().run_in_executor(None, web.process.wait, GRACEFUL_TIMEOUT)
        output = web.output()
        await call.close()
        await unjoined.close()
    finally:
        stop_web_process(web)
    assert exit_code == 0, output[-3000:]
    assert "Traceback" not in output and "CancelledError" not in output, output[-3000:]


@pytest.mark.redis
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_sigterm_with_two_workers_and_media_workers_closes_every_kind_of_socket(database, redis_url):
    """Scaled out: /ws/events, a proxied call and a proxied socket that has not joined yet,
    on `serve --workers 2` in front of a `caretrack media` process."""
    doctor, patient = await make_user(Role.DOCTOR), await make_user(Role.PATIENT)
    appointment = await make_appointment(doctor, patient)
    cookie = await sign_in(patient, database)
    media_port = free_port()
    media_env = {**subprocess_env(database, redis_url, media_port), "CARETRACK_MEDIA_MODE": "workers"}
    media = subprocess.Popen([sys.executable, "-m", "caretrack", "media", "--port", str(media_port), "--id", "m1"],
                             env=media_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    web = None
    try:
        web = await start_web_process(database, redis_url, workers=2, env={"CARETRACK_MEDIA_MODE": "workers"})
        signal_url = web.url.replace("http", "ws", 1) + "/ws/signal"
        joined = SignalClient("patient", await websockets.connect(
            signal_url, origin=web.url, additional_headers={"cookie": cookie}, open_timeout=5))
        joined.start()
        await joined.send({"type": "join", "consultation": str(appointment.id)})
        await joined.wait(p.Welcome)
        unjoined = SignalClient("patient", await websockets.connect(
            signal_url, origin=web.url, additional_headers={"cookie": cookie}, open_timeout=5))
        unjoined.start()
        events = await connect(web.ws_url, cookie)
        web.process.send_signal(signal.SIGTERM)
        for client in (joined, unjoined):
            code, reason = await client.wait_closed(GRACEFUL_TIMEOUT * 2)
            assert code == p.CLOSE_RESTARTING and "reconnecting" in reason
        assert await events.wait_closed(GRACEFUL_TIMEOUT * 2) == (CLOSE_GOING_AWAY, GOING_AWAY)
        try:
            # generous: three processes stop here, on a machine that may be busy
            exit_code = await asyncio.get_running_loop().run_in_executor(None, web.process.wait, STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"caretrack serve --workers 2 was still running long after SIGTERM: {web.output()[-3000:]}")
        output = web.output()
        await joined.close()
        await unjoined.close()
    finally:
        if web is not None:
            stop_web_process(web)
        media.terminate()
        media.wait(30)
    assert exit_code == 0, output[-3000:]
    assert "Traceback" not in output and "CancelledError" not in output, output[-3000:]
