"""The codec alone: every message round-trips; bad input names its problem."""

from __future__ import annotations

import pytest

from signalling import Refused, Seat
from signalling import protocol as p

from .conftest import SignalServer, join

SERVER_SAMPLES = [
    p.Welcome(consultation="c", participant="a", name="A", role="host", admitted=True,
              ice_servers=[p.IceServerInfo(urls=["turn:t.example:3478"], username="u", credential="s")],
              max_message_bytes=65536),
    p.ProbeReady(ice_servers=[p.IceServerInfo(urls=["stun:s.example:3478"])]),
    p.Waiting(host_present=False),
    p.Lobby(waiting=[p.WaitingPerson(participant="b", name="B", role="guest")]),
    p.Admitted(),
    p.Participants(participants=[p.ParticipantInfo(participant="a", name="A", role="host", audio=True,
                                                   video=False, screen=True, screen_track="t2")]),
    p.RelayOffer(sdp="v=0", tracks={"2": p.TrackInfo(participant="b", kind="video", track="t")}),
    p.RelayAnswer(sdp="v=0"),
    p.ChatPosted(id="1", at="2030-01-01T00:00:00+00:00", participant="a", name="A", text="hi"),
    p.MediaStateChanged(participant="a", audio=False, video=True),
    p.ScreenShareChanged(participant="a", active=True, track="t2"),
    p.Recording(on=False, consents=p.Consents(host=True, patient=False)),
    p.Error(code=4400, message="bad", about="chat"),
    p.Ended(reason="done"),
    p.Ping(),
]


@pytest.mark.parametrize("message", SERVER_SAMPLES, ids=lambda m: m.type)
def test_server_messages_round_trip(message) -> None:
    wire = p.to_wire(message)
    assert '"v":1' in wire
    assert p.from_wire(wire, sender="server") == message


def test_every_type_has_a_sample_and_client_types_are_the_documented_set() -> None:
    assert {m.type for m in SERVER_SAMPLES} == p.SERVER_TYPES
    assert p.CLIENT_TYPES == {"join", "probe", "offer", "answer", "candidate", "leave", "admit", "chat", "media_state",
                              "screen_share", "recording_consent", "end", "pong"}


@pytest.mark.parametrize("raw, code, says", [
    ('{"v":1,"type":"chat","text":"   "}', 4400, "'text' string should match"),
    ('{"v":1,"type":"candidate"}', 4400, "'candidate' field required"),
    ('{"v":1,"type":"candidate","candidate":{"candidate":"x","sdpMLineIndex":-1}}', 4400, "greater than or equal to 0"),
    ('{"v":1,"type":"offer","sdp":""}', 4400, "at least 1 character"),
    ('{"v":1,"type":"admit","participant":7}', 4400, "valid string"),
    ('{"v":true,"type":"end"}', 4400, "version"),
    ('{"v":1,"type":"end","extra":1}', 4400, "'extra' extra inputs are not permitted"),
    ('{"v":1,"type":"ping"}', 4400, "unknown message type 'ping'"),  # a server message
    ('{"v":1,"type":"screen_share","active":true,"track":""}', 4400, "'track' string should have at least 1"),
    ('{"v":1,"type":"probe"}', 4400, "'consultation' field required"),
    ('{"v":1,"type":"probe","consultation":"a b"}', 4400, "'consultation' string should match"),
])
def test_invalid_client_messages(raw: str, code: int, says: str) -> None:
    with pytest.raises(p.ProtocolError) as problem:
        p.from_wire(raw)
    assert problem.value.code == code and says in problem.value.message, problem.value.message


def test_size_is_counted_in_utf8_bytes() -> None:
    text = '{"v":1,"type":"chat","text":"' + "é" * 40 + '"}'
    assert p.from_wire(text, max_bytes=200).text == "é" * 40
    with pytest.raises(p.ProtocolError) as problem:
        p.from_wire(text, max_bytes=len(text))  # 40 more bytes than characters
    assert problem.value.code == 4413


def test_seat_and_refused_check_their_input() -> None:
    from datetime import datetime

    with pytest.raises(ValueError, match="Seat.role must be one of"):
        Seat("doctor")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone-aware"):
        Seat("host", opens_at=datetime(2030, 1, 1))
    assert Refused(200, "x").code == 4403  # not a WebSocket application code: refused


async def test_shutdown_tells_every_socket_to_reconnect(server: SignalServer, clients) -> None:
    host = await join(server, "doc", "c-shutdown")
    patient = await join(server, "pat", "c-shutdown")
    clients += [host, patient]
    await server.service.close()
    for client in (host, patient):
        error = await client.wait(p.Error)
        assert (error.code, error.message) == (1012, "the server is restarting; reconnecting")
        assert await client.wait_closed() == (1012, "the server is restarting; reconnecting")
        assert client.of(p.Ended) == []  # not ended: the consultation goes on after the restart
    assert server.relay.rooms == {} and server.service.consultations == {}
    assert not server.service.has_ended("c-shutdown")
