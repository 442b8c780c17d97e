"""Every way in that must fail: each gets its close code (and, after the handshake, an
``error`` naming the problem), and the server keeps serving everyone else."""

from __future__ import annotations

import json

import pytest
import websockets

from signalling import protocol as p

from .conftest import SignalServer, join, open_socket


async def assert_still_serving(server: SignalServer, consultation: str = "c-still-up") -> None:
    client = await join(server, "doc", consultation)
    try:
        welcome = client.of(p.Welcome)[0]
        assert (welcome.role, welcome.admitted) == ("host", True)
    finally:
        await client.close()


async def closed_with(client, code: int) -> str:
    close_code, reason = await client.wait_closed()
    assert close_code == code, (close_code, reason, client.messages)
    errors = client.of(p.Error)
    assert errors and errors[-1].code == code, client.messages
    return errors[-1].message


async def test_foreign_origin_fails_the_handshake(server: SignalServer) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await open_socket(server, "doc", origin="http://evil.test")
    assert refused.value.response.status_code == 403
    await assert_still_serving(server)


async def test_unauthenticated_socket_is_closed_4401(server: SignalServer) -> None:
    client = await open_socket(server, None)
    try:
        assert "sign in" in await closed_with(client, 4401)
    finally:
        await client.close()
    await assert_still_serving(server)


async def test_someone_without_a_seat_is_refused_4403(server: SignalServer) -> None:
    client = await open_socket(server, "eve")
    try:
        await client.send({"type": "join", "consultation": "c-refused"})
        assert await closed_with(client, 4403) == "eve has no seat in consultation c-refused"
    finally:
        await client.close()
    assert "c-refused" not in server.service.consultations
    await assert_still_serving(server)


@pytest.mark.parametrize("consultation, says", [("closed-1", "is closed"), ("later-1", "opens at")])
async def test_a_closed_consultation_or_one_not_yet_open_is_refused_4409(
        server: SignalServer, consultation: str, says: str) -> None:
    client = await open_socket(server, "pat")
    try:
        await client.send({"type": "join", "consultation": consultation})
        assert says in await closed_with(client, 4409)
    finally:
        await client.close()
    assert server.relay.rooms == {}
    await assert_still_serving(server)


@pytest.mark.parametrize("raw, says", [
    ("{not json", "not JSON"),
    ("[1, 2]", "JSON object"),
    ('{"type": "chat", "text": "hi"}', "no 'v'"),
    ('{"v": 2, "type": "chat", "text": "hi"}', "version"),
    ("[" * 20_000 + "]" * 20_000, "not JSON"),
])
async def test_malformed_message_after_join_closes_4400(server: SignalServer, raw: str, says: str) -> None:
    client = await join(server, "doc", "c-malformed")
    try:
        await client.send(raw)
        assert says in await closed_with(client, 4400)
    finally:
        await client.close()
    await assert_still_serving(server)


async def test_first_message_must_be_a_valid_join(server: SignalServer) -> None:
    for first, says in (({"type": "chat", "text": "hi"}, "must be a join"),
                        ({"type": "join", "consultation": "../etc"}, "'consultation' string should match")):
        client = await open_socket(server, "doc")
        try:
            await client.send(first)
            assert says in await closed_with(client, 4400)
        finally:
            await client.close()
    await assert_still_serving(server)


async def test_binary_message_closes_4400(server: SignalServer) -> None:
    client = await join(server, "doc", "c-binary")
    try:
        await client.ws.send(b"\x00\x01")
        assert "binary" in await closed_with(client, 4400)
    finally:
        await client.close()


async def test_unknown_type_and_bad_fields_get_an_error_and_the_socket_stays(server: SignalServer) -> None:
    client = await join(server, "doc", "c-unknown")
    try:
        await client.send({"type": "teleport"})
        error = await client.wait(p.Error)
        assert (error.code, error.about) == (4400, "teleport")
        assert "unknown message type 'teleport'" in error.message
        await client.send({"type": "media_state", "audio": "yes", "video": True})
        error = await client.wait(p.Error, lambda e: e.about == "media_state")
        assert "'audio' input should be a valid boolean" in error.message
        await client.send({"type": "chat", "text": "x" * (p.MAX_CHAT_CHARS + 1)})
        error = await client.wait(p.Error, lambda e: e.about == "chat")
        assert "at most 2000 characters" in error.message
        # still joined: a valid chat is posted back
        await client.send({"type": "chat", "text": "still here"})
        posted = await client.wait(p.ChatPosted)
        assert posted.text == "still here"
        assert not client.closed.done()
    finally:
        await client.close()


async def test_oversized_message_closes_4413(server: SignalServer) -> None:
    client = await join(server, "doc", "c-oversized")
    try:
        await client.send(json.dumps({"v": 1, "type": "chat", "text": "x" * (64 * 1024)}))
        assert "over the limit of 65536" in await closed_with(client, 4413)
    finally:
        await client.close()
    await assert_still_serving(server)


async def test_flooding_is_warned_then_closed_4429(server: SignalServer) -> None:
    client = await join(server, "doc", "c-flood")
    try:
        for _ in range(300):
            await client.send({"type": "pong"})
        close_code, _ = await client.wait_closed()
        assert close_code == 4429
        assert [e.code for e in client.of(p.Error)] == [4429, 4429]  # the warning, then the reason
        assert client.of(p.Error)[0].message == "too many messages: slow down"
    finally:
        await client.close()
    await assert_still_serving(server)


async def test_a_steady_client_within_the_rate_is_not_throttled(server: SignalServer) -> None:
    client = await join(server, "doc", "c-steady")
    try:
        for _ in range(60):  # 60 messages at ~8/s (limit: 10/s, burst 30)
            await client.send({"type": "pong"})
            await __import__("asyncio").sleep(0.12)
        assert client.of(p.Error) == []
        assert not client.closed.done()
    finally:
        await client.close()


async def test_waiting_patient_cannot_reach_media_or_host_actions(server: SignalServer, clients) -> None:
    host = await join(server, "doc", "c-gate")
    patient = await join(server, "pat", "c-gate")
    clients += [host, patient]
    await patient.wait(p.Waiting)
    await patient.send({"type": "offer", "sdp": "v=0\r\n"})
    error = await patient.wait(p.Error, lambda e: e.about == "offer")
    assert (error.code, error.message) == (4403, "you cannot send media before the host admits you")
    for message, about in (({"type": "admit", "participant": "pat"}, "admit"), ({"type": "end"}, "end"),
                           ({"type": "chat", "text": "hello?"}, "chat")):
        await patient.send(message)
        assert (await patient.wait(p.Error, lambda e, a=about: e.about == a)).code == 4403
    room = server.relay.rooms.get("c-gate")
    assert room is None or "pat" not in room.participants
    assert host.of(p.ChatPosted) == [] and server.hooks.chats == [] and server.hooks.ended == []
    assert not patient.closed.done()
