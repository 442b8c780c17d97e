"""/ws/events: who may connect, when a socket is closed, and how bad clients are handled."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import timedelta

import httpx
import pytest
import websockets

from caretrack.accounts.models import AccessToken, User
from caretrack.accounts.sessions import digest, new_access_token_secret, revoke_session
from caretrack.core.outbox.store import notify_auth_changed
from caretrack.core.roles import Role
from caretrack.realtime.bus import BusConfig
from caretrack.realtime.sockets import (
    CLOSE_BINARY,
    CLOSE_DEACTIVATED,
    CLOSE_FLOOD,
    CLOSE_MALFORMED,
    CLOSE_SESSION_ENDED,
    CLOSE_TIMEOUT,
    CLOSE_TOO_BIG,
    SESSION_EXPIRED,
    SIGNED_OUT,
)
from tests.realtime.conftest import FAST, connect, emit, make_user, open_socket, serve, sign_in


async def refused(server, cookie: str | None, **kw) -> int:
    with pytest.raises(websockets.InvalidStatus) as info:
        await open_socket(server, cookie, **kw)
    return info.value.response.status_code


async def test_the_handshake_is_refused_from_a_foreign_origin(server):
    cookie = await sign_in(await make_user(), server.settings)
    assert await refused(server, cookie, origin="https://evil.example") == 403
    assert await refused(server, cookie, origin="null") == 403
    client = await connect(server, cookie)  # the same cookie from our own origin is fine
    await client.close()


async def test_the_handshake_is_refused_without_a_session(server):
    assert await refused(server, None) == 403
    assert await refused(server, "caretrack_session=not-a-real-session") == 403


async def test_the_handshake_is_refused_for_a_logged_out_session(server):
    user = await make_user()
    cookie = await sign_in(user, server.settings)
    session = await user.sessions.all().first()
    await revoke_session(session.id)
    assert await refused(server, cookie) == 403


async def test_the_handshake_is_refused_for_an_admin_without_the_second_factor(server):
    from caretrack.accounts.sessions import cookie_name, create_session

    admin = await make_user(Role.ADMIN)
    secret, _ = await create_session(admin, server.settings, client_address=None, user_agent=None)
    assert await refused(server, f"{cookie_name(server.settings)}={secret}") == 403


async def test_deactivating_a_user_closes_their_sockets_within_5_seconds(server):
    user, other = await make_user(), await make_user()
    cookie = await sign_in(user, server.settings)
    first, second = await connect(server, cookie), await connect(server, cookie)
    bystander = await connect(server, await sign_in(other, server.settings))
    await User.filter(id=user.id).update(is_active=False)
    started = time.monotonic()
    notify_auth_changed(user.id)
    assert (await first.wait_closed(5))[0] == CLOSE_DEACTIVATED
    assert (await second.wait_closed(5))[0] == CLOSE_DEACTIVATED
    assert time.monotonic() - started < 5
    assert await refused(server, cookie) == 403
    await emit("task.completed", users=[other.id])
    await bystander.wait_for(1)  # others are untouched
    await bystander.close()


async def test_logging_out_closes_that_sessions_sockets_only(server):
    user = await make_user()
    phone, laptop = await sign_in(user, server.settings), await sign_in(user, server.settings)
    on_phone, on_laptop = await connect(server, phone), await connect(server, laptop)
    sessions = await user.sessions.all()
    phone_session = next(s for s in sessions if digest(phone.split("=", 1)[1]) == s.id)
    await revoke_session(phone_session.id)
    notify_auth_changed(user.id)
    assert await on_phone.wait_closed(5) == (CLOSE_SESSION_ENDED, SIGNED_OUT)
    await emit("task.completed", users=[user.id])
    await on_laptop.wait_for(1)
    await on_laptop.close()


async def test_an_expired_session_is_closed_by_the_periodic_sweep(settings):
    server = await serve(settings, BusConfig(**{**FAST.__dict__, "auth_sweep_seconds": 0.3}))
    try:
        user = await make_user()
        client = await connect(server, await sign_in(user, server.settings))
        from caretrack.accounts.models import Session
        from caretrack.accounts.sessions import now

        await Session.filter(user_id=user.id).update(expires_at=now())  # nobody calls notify_auth_changed
        assert (await client.wait_closed(5))[0] == CLOSE_SESSION_ENDED
    finally:
        await server.stop()


async def test_a_session_is_closed_when_it_lapses_long_before_the_sweep(server):
    """The sweep is 30 s away (FAST); the socket is checked again when its session expires."""
    from caretrack.accounts.models import Session
    from caretrack.accounts.sessions import now

    user = await make_user()
    cookie = await sign_in(user, server.settings)
    await Session.filter(user_id=user.id).update(expires_at=now() + timedelta(seconds=2))
    client = await connect(server, cookie)  # nobody calls notify_auth_changed
    assert await client.wait_closed(5) == (CLOSE_SESSION_ENDED, SESSION_EXPIRED)


async def test_an_access_token_authenticates_and_its_revocation_closes_the_socket(server):
    user = await make_user()
    secret = new_access_token_secret()
    token = await AccessToken.create(user=user, name="cli", token_hash=digest(secret), prefix=secret[:12])
    client = await connect(server, None, headers={"Authorization": f"Bearer {secret}"})
    await emit("task.completed", users=[user.id])
    await client.wait_for(1)
    await AccessToken.filter(id=token.id).update(revoked_at=token.created_at)
    notify_auth_changed(user.id)
    assert (await client.wait_closed(5))[0] == CLOSE_SESSION_ENDED


@pytest.mark.parametrize(("payload", "code", "reason"), [
    ("not json", CLOSE_MALFORMED, "message is not JSON"),
    ("[1, 2]", CLOSE_MALFORMED, "message must be a JSON object with a string 'type'"),
    ('{"type": "subscribe"}', CLOSE_MALFORMED, "unexpected message type 'subscribe'"),
    ('{"type": "pong", "pad": "' + "x" * 2000 + '"}', CLOSE_TOO_BIG, "messages are limited to 1024 characters"),
    (b"\x00\x01", CLOSE_BINARY, "binary messages are not accepted"),
])
async def test_malformed_or_oversized_messages_close_the_socket_with_a_clear_code(server, payload, code, reason):
    client = await connect(server, await sign_in(await make_user(), server.settings))
    await client.ws.send(payload)
    assert await client.wait_closed(5) == (code, reason)


async def test_a_bad_resume_message_closes_the_socket(server):
    ws = await open_socket(server, await sign_in(await make_user(), server.settings))
    assert json.loads(await ws.recv())["type"] == "hello"
    await ws.send(json.dumps({"type": "resume", "after": -3}))
    with pytest.raises(websockets.ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 5)
    assert (ws.close_code, ws.close_reason) == (
        CLOSE_MALFORMED, "resume 'after' must be a non-negative integer or null")


async def test_a_client_that_stops_answering_heartbeats_is_closed(settings):
    server = await serve(settings, BusConfig(**{**FAST.__dict__, "ping_seconds": 0.2, "pong_timeout_seconds": 0.8}))
    try:
        cookie = await sign_in(await make_user(), server.settings)
        alive = await connect(server, cookie)  # answers pings
        ws = await open_socket(server, cookie)
        await ws.recv()
        await ws.send(json.dumps({"type": "resume", "after": None}))
        pings = 0
        with pytest.raises(websockets.ConnectionClosed):
            while True:  # read, never answer
                pings += json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "ping"
        assert (ws.close_code, ws.close_reason) == (CLOSE_TIMEOUT, "no reply to heartbeats")
        assert pings >= 2
        assert not alive.closed.done()
        await alive.close()
    finally:
        await server.stop()


async def test_a_flooding_client_is_closed_after_a_bounded_number_of_messages_without_hurting_others(settings):
    # The sockets' clock stands still: the bucket never refills, so exactly `burst` messages
    # fit in the budget and the 40th over-budget message closes the flooder. No heartbeats:
    # a client's answer to a ping would be one more message than the test counts.
    server = await serve(settings, BusConfig(**{**FAST.__dict__, "message_rate": 20.0, "message_burst": 10,
                                                "flood_strikes": 40, "clock": lambda: 1000.0,
                                                "ping_seconds": 3600.0, "pong_timeout_seconds": 7200.0}))
    try:
        flooder_user, calm_user = await make_user(), await make_user()
        flooder = await connect(server, await sign_in(flooder_user, server.settings))
        calm = await connect(server, await sign_in(calm_user, server.settings))
        pong = json.dumps({"type": "pong"})

        async def flood() -> int:
            sent = 0
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await flooder.ws.send(pong)
                    sent += 1
                    if sent % 50 == 0:
                        await asyncio.sleep(0)
            return sent

        flooding = asyncio.create_task(flood())
        await emit("task.completed", users=[calm_user.id], data={"n": 1})  # while the flood runs
        code, reason = await flooder.wait_closed(10)
        assert (code, reason) == (CLOSE_FLOOD, "too many messages")
        await flooding
        await emit("task.completed", users=[calm_user.id], data={"sentinel": True})
        received = await calm.wait_for(2)
        assert [m["event"]["data"] for m in received] == [{"n": 1}, {"sentinel": True}]
        assert not calm.closed.done()
        await calm.close()
        # The bound is exact: the server reads and judges message 10 + 39 (a malformed one closes
        # as malformed), and message 10 + 40 closes the socket as a flood, whatever it holds.
        for pongs, closed_as in ((48, (CLOSE_MALFORMED, "unexpected message type 'sentinel'")),
                                 (49, (CLOSE_FLOOD, "too many messages"))):
            probe = await connect(server, await sign_in(await make_user(), server.settings))
            for _ in range(pongs):
                await probe.ws.send(pong)
            await probe.ws.send(json.dumps({"type": "sentinel"}))
            assert await probe.wait_closed(10) == closed_as, pongs
    finally:
        await server.stop()


async def test_open_sockets_are_counted_in_the_metrics(server):
    async def gauge() -> float:
        async with httpx.AsyncClient() as c:
            text = (await c.get(server.url + "/metrics")).text
        match = re.search(r'caretrack_open_websockets\{route="/ws/events"\} ([0-9.]+)', text)
        return float(match.group(1)) if match else 0.0

    before = await gauge()
    client = await connect(server, await sign_in(await make_user(), server.settings))
    assert await gauge() == before + 1
    await client.close()
    for _ in range(50):
        if await gauge() == before:
            break
        await asyncio.sleep(0.02)
    assert await gauge() == before


async def test_a_client_that_stops_reading_is_closed_and_others_keep_receiving(settings):
    server = await serve(settings, BusConfig(**{**FAST.__dict__, "send_timeout_seconds": 1.0,
                                                "cursor_check_seconds": 0.3}))
    try:
        stalled_user, reader_user = await make_user(), await make_user()
        sock = await raw_socket_that_never_reads(server, await sign_in(stalled_user, server.settings))
        reader = await connect(server, await sign_in(reader_user, server.settings))
        # the stalled client never reads again: its TCP buffers fill and the server's send blocks
        bulk = {"note": "x" * 15000}
        for _ in range(700):  # 10 MB: more than the socket buffers hold (up to 4 MB each way)
            await emit("task.completed", users=[stalled_user.id], data=bulk)
        await emit("task.completed", users=[reader_user.id], data={"n": 1})
        await reader.wait_for(1)
        for _ in range(200):  # the watchdog (1 s) closes it; the close itself may wait 5 s
            if not server.bus.sockets.get(stalled_user.id):
                break
            await asyncio.sleep(0.05)
        conns = server.bus.sockets.get(stalled_user.id)
        assert not conns, [(c.last_sent, c.sending_since, c._close, len(c._queue), c._need_catch_up) for c in conns]
        await reader.close()
        sock.close()
    finally:
        await server.stop()


async def raw_socket_that_never_reads(server, cookie: str):
    """A WebSocket client on a bare socket with a tiny receive buffer: it completes the
    handshake, resumes, and then never reads again."""
    import base64
    import os
    import socket

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    port = int(server.url.rsplit(":", 1)[1])
    await asyncio.get_running_loop().run_in_executor(None, sock.connect, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  f"Origin: {server.url}\r\nCookie: {cookie}\r\n\r\n").encode())
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    response = b""
    while b"\r\n\r\n" not in response:
        response += await loop.sock_recv(sock, 1)
    assert response.startswith(b"HTTP/1.1 101"), response
    payload = json.dumps({"type": "resume", "after": None}).encode()
    mask = os.urandom(4)
    frame = bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    await loop.sock_sendall(sock, frame)
    return sock
