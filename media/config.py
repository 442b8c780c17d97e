"""Relay configuration: a small frozen value the host application builds once."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class IceServer:
    """A STUN or TURN server (``stun:host:port``, ``turn:host:port?transport=udp``)."""

    urls: str
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True)
class RelayConfig:
    """What the relay needs from its host; nothing here is read from the environment.

    ``allowed_networks``: the relay only ever sends media to remote ICE candidates
    inside these networks; candidates outside them (and unresolved mDNS ``.local``
    names) are dropped from offers and trickled candidates.  An empty tuple admits
    every address.

    ``max_video_bitrate``: ceiling (bit/s) of the REMB estimate passed to a
    publisher, on top of the lowest estimate reported by its subscribers.

    ``allowed_networks`` also covers peer-reflexive candidates: a STUN check
    from an address outside them is dropped unanswered (``_aioice_hooks``), so a
    peer cannot reach the relay by skipping candidate signalling.

    ``udp_ports``: ``(low, high)``, an inclusive range the relay's ICE host
    candidates bind in (each peer connection's ICE transport binds one port per
    host address); ``None`` binds ephemeral ports.  When every port of the range
    is in use on an address, joining fails with a ``RelayError`` naming the
    range.  TURN client sockets are not affected.
    """

    ice_servers: tuple[IceServer, ...] = ()
    allowed_networks: tuple[str, ...] = ()
    recordings_dir: Path = field(default_factory=lambda: Path("recordings"))
    max_video_bitrate: int = 2_500_000
    nack_history_packets: int = 1024
    udp_ports: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        for network in self.allowed_networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(
                    f"RelayConfig.allowed_networks entry {network!r} is not a network: {exc}"
                ) from None
        for server in self.ice_servers:
            if not server.urls.startswith(("stun:", "stuns:", "turn:", "turns:")):
                raise ValueError(
                    f"RelayConfig.ice_servers entry {server.urls!r} is not a stun:/turn: url"
                )
        if self.max_video_bitrate <= 0:
            raise ValueError(
                f"RelayConfig.max_video_bitrate must be positive, got {self.max_video_bitrate}"
            )
        n = self.nack_history_packets
        if n <= 0 or n & (n - 1):
            raise ValueError(
                f"RelayConfig.nack_history_packets must be a power of two, got {n}"
            )

        if self.udp_ports is not None:
            ports = self.udp_ports
            if not (
                isinstance(ports, tuple)
                and len(ports) == 2
                and all(isinstance(p, int) and not isinstance(p, bool) for p in ports)
                and 1024 <= ports[0] <= ports[1] <= 65535
            ):
                raise ValueError(
                    "RelayConfig.udp_ports must be (low, high) with "
                    f"1024 <= low <= high <= 65535, got {ports!r}"
                )

    def networks(self) -> tuple[IPNetwork, ...]:
        return tuple(ipaddress.ip_network(n, strict=False) for n in self.allowed_networks)

    def address_allowed(self, address: str) -> bool:
        """True when media may be sent to ``address`` (an IP literal)."""
        if not self.allowed_networks:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks())
