"""The relay's ICE obeys RelayConfig: host ports in udp_ports, no peer-reflexive
candidates (STUN checks) from outside allowed_networks."""

from __future__ import annotations

import contextlib
import random
import socket
from collections.abc import Iterator

import pytest
from aioice.ice import get_host_addresses

import media
from media import _aioice_hooks as ice_hooks

from .helpers import Client, relay_config, wait_for

OUTSIDE = "198.51.100.0/24"  # TEST-NET-2: nothing on this machine is in it


def host_addresses() -> list[str]:
    """The addresses aioice gathers host candidates on (it skips loopback)."""
    return get_host_addresses(use_ipv4=True, use_ipv6=True)


@contextlib.contextmanager
def bound(ports: range) -> Iterator[None]:
    """Hold every port of ``ports`` on every host address."""
    socks = []
    try:
        for address in host_addresses():
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            for port in ports:
                sock = socket.socket(family, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind((address, port))
        yield
    finally:
        for sock in socks:
            sock.close()


def free_range(size: int) -> tuple[int, int]:
    """``size`` consecutive ports free on every host address, below the ephemeral range."""
    for _ in range(50):
        low = random.randrange(20000, 32000 - size)
        try:
            with bound(range(low, low + size)):
                pass
        except OSError:
            continue
        return low, low + size - 1
    raise AssertionError("no free port range")


def candidate_ports(sdp: str) -> list[int]:
    return [int(line.split()[5]) for line in sdp.splitlines() if line.startswith("a=candidate:")]


def test_udp_ports_validation_names_the_field() -> None:
    for bad in ((80, 90), (5000, 4000), (40000, 70000), (40000,), [40000, 40010], (40000.0, 40010)):
        with pytest.raises(ValueError, match=r"RelayConfig\.udp_ports"):
            media.RelayConfig(udp_ports=bad)  # type: ignore[arg-type]
    assert media.RelayConfig(udp_ports=(1024, 1024)).udp_ports == (1024, 1024)
    assert media.RelayConfig(udp_ports=(40000, 65535)).udp_ports == (40000, 65535)


async def test_relay_candidates_are_in_udp_ports_and_the_call_works() -> None:
    low, high = free_range(24)
    relay = media.Relay(relay_config(udp_ports=(low, high)))
    room = relay.room("ports")
    alice, bob = Client("alice", "red"), Client("bob", "blue")
    try:
        await alice.join(room)
        await bob.join(room)
        assert await wait_for(
            lambda: all(c.tracks("video") and len(c.tracks("video")[0].frames) > 10 for c in (alice, bob)), 15
        )
        offered = []
        for client in (alice, bob):
            # what each client was told to send to: the relay's answer and re-offers
            offered += candidate_ports(client.pc.remoteDescription.sdp)
        assert offered and all(low <= port <= high for port in offered), (low, high, offered)
        # every ICE connection of the relay follows its policy (none gathered outside it)
        connections = [
            t.receiver.transport.transport.iceGatherer._connection
            for pc in relay.peer_connections for t in pc.getTransceivers()
        ]
        assert connections and all(ice_hooks.policy_of(c) is relay.ice_policy for c in connections)
        # the sockets really are there: these ports are taken now
        for participant in room.participants.values():
            for port in candidate_ports(participant.pc.localDescription.sdp):
                with pytest.raises(OSError):
                    with bound(range(port, port + 1)):
                        pass
    finally:
        await alice.close()
        await bob.close()
        await relay.close()


async def test_a_full_udp_port_range_is_a_clear_error() -> None:
    low, high = free_range(3)
    relay = media.Relay(relay_config(udp_ports=(low, high)))
    room = relay.room("full")
    alice = Client("alice", "red")
    try:
        with bound(range(low, high + 1)):
            with pytest.raises(media.RelayError, match=rf"RelayConfig\.udp_ports {low}-{high}.*all 3 ports are in use"):
                await alice.join(room)
        assert room.participants == {}
        assert relay.peer_connections == {}
    finally:
        await alice.close()
        await relay.close()


def without_candidates(sdp: str) -> str:
    """An offer that signals no candidate and no end-of-candidates (nothing trickled yet)."""
    lines = [
        line for line in sdp.splitlines()
        if not line.startswith(("a=candidate:", "a=end-of-candidates"))
    ]
    return "\r\n".join(lines) + "\r\n"


@pytest.mark.parametrize("allowed", [True, False], ids=["inside", "outside"])
async def test_a_peer_outside_allowed_networks_cannot_connect_as_peer_reflexive(allowed: bool) -> None:
    """The client never signals a candidate, so the relay only learns its address
    from the client's STUN checks (a peer-reflexive candidate)."""
    network = "192.0.2.0/24" if allowed else OUTSIDE
    relay = media.Relay(media.RelayConfig(allowed_networks=(network,)))
    room = relay.room("prflx")
    client = Client("mallory", "red")
    try:
        client.pc.addTrack(client.audio)
        client.pc.addTrack(client.video)
        await client.pc.setLocalDescription(await client.pc.createOffer())
        client.participant = await room.join("mallory", without_candidates(client.pc.localDescription.sdp))
        client._pump()
        participant = client.participant

        connected = await wait_for(lambda: participant.connection_state == "connected", 6)
        transport = participant.pc.getTransceivers()[0].receiver.transport.transport
        learned = [(c.type, c.ip) for c in transport.getRemoteCandidates()]
        if allowed:
            # the control: this construction does connect, through a peer-reflexive candidate
            assert connected and client.pc.connectionState == "connected"
            assert learned and {kind for kind, _ in learned} == {"prflx"}, learned
            assert await wait_for(lambda: participant.publications and all(
                p.stats.packets_in > 0 for p in participant.publications.values()), 5)
        else:
            assert not connected, learned
            assert client.pc.iceConnectionState != "completed"
            assert client.pc.connectionState != "connected"
            assert learned == []  # the relay never took the client's address as a candidate
            assert all(p.stats.packets_in == 0 for p in participant.publications.values())
    finally:
        await client.close()
        await relay.close()
