"""The pre-call network check: a `probe` socket gets a data-channel peer connection with the
real relay (over 192.0.2.2, as calls do) that echoes packets back; nothing joins the
consultation, refusals are those of a join, and everything is closed afterwards."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

import media
from signalling import protocol as p
from tests.media.helpers import wait_for

from .conftest import TEST_LIMITS, SignalClient, SignalServer, join, open_socket
from .test_refusals import closed_with


async def probing(server: SignalServer, clients: list[SignalClient], user: str = "pat",
                  consultation: str = "c-net") -> SignalClient:
    client = await open_socket(server, user)
    clients.append(client)
    await client.send({"type": "probe", "consultation": consultation})
    return client


async def open_channel(client: SignalClient):
    """The browser's side: one unordered, never retransmitted channel; the relay's answer is
    applied by the client's reader."""
    client.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    channel = client.pc.createDataChannel("network-check", ordered=False, maxRetransmits=0)
    echoes: list[str] = []
    channel.on("message", echoes.append)
    opened = asyncio.get_running_loop().create_future()
    channel.on("open", lambda: opened.done() or opened.set_result(None))
    await client.pc.setLocalDescription(await client.pc.createOffer())
    await client.send({"type": "offer", "sdp": client.pc.localDescription.sdp})
    await client.wait(p.RelayAnswer)
    await asyncio.wait_for(opened, 15)
    return channel, echoes


async def test_a_network_check_echoes_through_the_relay_and_joins_nothing(server: SignalServer, clients) -> None:
    host = await join(server, "doc", "c-net")
    clients.append(host)
    client = await probing(server, clients)
    ready = await client.wait(p.ProbeReady)
    assert ready.ice_servers == []  # the relay's own (none in these tests)
    channel, echoes = await open_channel(client)
    for seq in range(10):
        channel.send(str(seq))
    assert await wait_for(lambda: len(echoes) == 10, timeout=10), echoes
    assert sorted(echoes, key=int) == [str(seq) for seq in range(10)]
    (probe,) = server.relay.probes
    assert probe.echoed == 10

    # the doctor never saw anyone: no lobby entry, no participant, no relay participant
    consultation = server.service.consultations["c-net"]
    assert list(consultation.members) == ["doc"]
    assert all(not lobby.waiting for lobby in host.of(p.Lobby))
    assert "pat" not in server.relay.room("c-net").participants

    await client.send({"type": "leave"})
    assert await client.wait_closed() == (1000, "the network check is over")
    assert server.relay.probes == set()
    assert await wait_for(lambda: all(prefix.startswith("[pc") for prefix in server.relay.peer_connections.values()),
                          timeout=5)


async def test_a_network_check_is_refused_like_a_join(server: SignalServer, clients) -> None:
    outsider = await probing(server, clients, user="eve", consultation="c-net")
    assert await closed_with(outsider, 4403) == "eve has no seat in consultation c-net"
    closed = await probing(server, clients, consultation="closed-net")
    assert "is closed" in await closed_with(closed, 4409)
    assert server.relay.probes == set() and "c-net" not in server.service.consultations


async def test_a_network_check_takes_one_data_channel_offer_only(server: SignalServer, clients) -> None:
    client = await probing(server, clients)
    await client.wait(p.ProbeReady)
    media_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    media_pc.addTransceiver("audio")
    await media_pc.setLocalDescription(await media_pc.createOffer())
    await client.send({"type": "offer", "sdp": media_pc.localDescription.sdp})
    error = await client.wait(p.Error)
    assert (error.code, error.about) == (4400, "offer")
    assert "one data channel and no audio or video (its offer has audio)" in error.message
    await media_pc.close()
    assert server.relay.probes == set()

    await open_channel(client)
    await client.send({"type": "offer", "sdp": client.pc.localDescription.sdp})
    again = await client.wait(p.Error, lambda m: "takes one offer" in m.message)
    assert again.about == "offer"
    await client.send({"type": "chat", "text": "hello?"})
    await client.wait(p.Error, lambda m: m.about == "chat")
    assert len(server.relay.probes) == 1  # the first check goes on


async def test_the_relay_caps_network_checks(server: SignalServer, clients, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(media.probe, "MAX_PROBES", 1)
    first = await probing(server, clients)
    await first.wait(p.ProbeReady)
    await open_channel(first)
    second = await probing(server, clients, user="doc")
    await second.wait(p.ProbeReady)
    second.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    second.pc.createDataChannel("network-check", ordered=False, maxRetransmits=0)
    await second.pc.setLocalDescription(await second.pc.createOffer())
    await second.send({"type": "offer", "sdp": second.pc.localDescription.sdp})
    error = await second.wait(p.Error)
    assert error.message == "1 network checks are already running on this server; try again in a minute"
    assert second.of(p.RelayAnswer) == []  # the error is the reply to the offer
    assert len(server.relay.probes) == 1


async def test_a_new_check_by_the_same_person_replaces_the_older(server: SignalServer, clients) -> None:
    first = await probing(server, clients)
    await first.wait(p.ProbeReady)
    await open_channel(first)
    (older,) = server.relay.probes
    second = await probing(server, clients)
    await second.wait(p.ProbeReady)
    channel, echoes = await open_channel(second)
    (newer,) = server.relay.probes
    assert newer is not older and older.pc.connectionState == "closed"
    channel.send("1")
    assert await wait_for(lambda: echoes == ["1"], timeout=10)


async def test_a_network_check_ends_by_itself(server: SignalServer, clients, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server.service, "limits", dataclasses.replace(TEST_LIMITS, probe_seconds=1.0))
    client = await probing(server, clients)
    await client.wait(p.ProbeReady)
    await open_channel(client)
    assert len(server.relay.probes) == 1
    assert await client.wait_closed(timeout=10) == (1000, "the network check is over")
    assert server.relay.probes == set()


async def test_a_caller_with_a_form_to_complete_may_check_the_network_but_not_join(server: SignalServer,
                                                                                   clients) -> None:
    client = await probing(server, clients, consultation="form-1")
    await client.wait(p.ProbeReady)
    channel, echoes = await open_channel(client)
    channel.send("1")
    assert await wait_for(lambda: echoes == ["1"], timeout=10), echoes

    joining = await open_socket(server, "pat")
    clients.append(joining)
    await joining.send({"type": "join", "consultation": "form-1"})
    assert await closed_with(joining, 4403) == "complete the form first"
    assert "form-1" not in server.service.consultations
