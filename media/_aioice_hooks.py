"""Every aioice internal the relay touches, in one place.

aiortc gives each transport an ``aioice.Connection`` and offers no way to
restrict it, so the relay replaces two ``Connection`` methods on the class:

* ``request_received`` (an incoming STUN binding request): a request from an
  address outside ``RelayConfig.allowed_networks`` is dropped unanswered.  This
  is the only path on which aioice learns a *peer-reflexive* remote candidate
  (``check_incoming``, directly or through the early-check queue that
  ``connect()`` drains), so the relay never answers, checks, nominates or sends
  media to such an address.  Signalled candidates are filtered in ``relay.py``.
* ``get_component_candidates`` (binding the host candidates' sockets): with
  ``RelayConfig.udp_ports`` set, each host socket is bound to a port of that
  range (random start, ports in use skipped) instead of an ephemeral one.

Nothing changes at import: :func:`install` puts the replacements in place, and
:class:`media.Relay` calls it when it is created.  They act only on connections
that gathered inside :func:`applying` (the relay wraps its ``setLocalDescription``
calls, which is where aiortc gathers); every other connection in the process,
such as an aiortc client in the tests, keeps aioice's own behaviour.  If an upgrade moves
one of these internals, the version check below and
``tests/media/test_aioice_hooks.py`` are where it shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import errno
import ipaddress
import logging
import random
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import aioice
from aioice import ice, stun, turn
from aioice.candidate import Candidate, candidate_foundation, candidate_priority

logger = logging.getLogger(__name__)

PINNED_AIOICE = "0.13."

if not aioice.__version__.startswith(PINNED_AIOICE):
    raise ImportError(
        f"media relay is pinned to aioice {PINNED_AIOICE}x but aioice "
        f"{aioice.__version__} is installed: the relay replaces aioice.Connection."
        "request_received and get_component_candidates (media/_aioice_hooks.py). "
        "Re-check both against the new version, run tests/media/test_aioice_hooks.py, "
        "then update PINNED_AIOICE."
    )

__all__ = ["IcePolicy", "PortRangeExhausted", "applying", "install", "installed", "policy_of"]

_POLICY_ATTR = "_caretrack_ice_policy"


@dataclass(frozen=True)
class IcePolicy:
    """What one relay peer connection's ICE may do."""

    address_allowed: Callable[[str], bool]
    udp_ports: tuple[int, int] | None = None


class PortRangeExhausted(OSError):
    """Every port of the configured UDP range is in use on a host address."""

    def __init__(self, address: str, udp_ports: tuple[int, int]) -> None:
        low, high = udp_ports
        super().__init__(
            errno.EADDRINUSE,
            f"no free UDP port in RelayConfig.udp_ports {low}-{high} for an ICE host "
            f"candidate on {address}: all {high - low + 1} ports are in use",
        )
        self.address = address
        self.udp_ports = udp_ports


_current: contextvars.ContextVar[IcePolicy | None] = contextvars.ContextVar(
    "caretrack_ice_policy", default=None
)


@contextlib.contextmanager
def applying(policy: IcePolicy) -> Iterator[None]:
    """Connections that gather candidates inside this block follow ``policy``.

    aiortc gathers in ``RTCPeerConnection.setLocalDescription``, in tasks that
    inherit this context; the policy then stays with the connection.
    """
    token = _current.set(policy)
    try:
        yield
    finally:
        _current.reset(token)


def policy_of(connection: ice.Connection) -> IcePolicy | None:
    return getattr(connection, _POLICY_ATTR, None)


# -- the replacements -------------------------------------------------------

_original_request_received = ice.Connection.request_received
_original_get_component_candidates = ice.Connection.get_component_candidates


def _request_received(
    self: ice.Connection, message: stun.Message, addr: tuple[str, int], protocol: ice.StunProtocol
) -> None:
    policy = policy_of(self)
    if policy is not None and not policy.address_allowed(addr[0]):
        logger.info("%s ignored a STUN request from %s: outside allowed networks", self, addr[0])
        return
    _original_request_received(self, message, addr, protocol)


async def _get_component_candidates(
    self: ice.Connection, component: int, addresses: list[str], timeout: int = 5
) -> list[Candidate]:
    policy = policy_of(self) or _current.get()
    if policy is not None:
        setattr(self, _POLICY_ATTR, policy)
    if policy is None or policy.udp_ports is None:
        return await _original_get_component_candidates(self, component, addresses, timeout)

    started = time.monotonic()
    loop = asyncio.get_running_loop()
    host_protocols: list[ice.StunProtocol] = []
    try:
        for address in addresses:
            sock = _bind_in_range(address, policy.udp_ports)
            if sock is None:
                continue
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, turn.UDP_SOCKET_BUFFER_SIZE)
            _, protocol = await loop.create_datagram_endpoint(lambda: ice.StunProtocol(self), sock=sock)
            host, port = protocol.transport.get_extra_info("sockname")[:2]
            # the same host candidate aioice builds for a socket it bound itself
            protocol.local_candidate = Candidate(
                foundation=candidate_foundation("host", "udp", host),
                component=component,
                transport="udp",
                priority=candidate_priority(component, "host"),
                host=host,
                port=port,
                type="host",
            )
            host_protocols.append(protocol)
    except BaseException:
        for protocol in host_protocols:
            protocol.transport.close()
        raise
    self._protocols += host_protocols
    candidates = [p.local_candidate for p in host_protocols]

    # Server-reflexive candidates from the host sockets (IPv4 only, as aioice does);
    # aioice's own method, given no addresses, still gathers the TURN candidate.
    reflexive = [
        asyncio.create_task(ice.server_reflexive_candidate(protocol, self.stun_server))
        for protocol in host_protocols
        if self.stun_server and ipaddress.ip_address(protocol.local_candidate.host).version == 4
    ]
    relayed = await _original_get_component_candidates(self, component, [], timeout)
    if reflexive:
        remaining = max(timeout - (time.monotonic() - started), 0.001)
        done, pending = await asyncio.wait(reflexive, timeout=remaining)
        for task in pending:
            task.cancel()
        candidates += [task.result()[0] for task in done if task.exception() is None]
    return candidates + relayed


def _bind_in_range(address: str, udp_ports: tuple[int, int]) -> socket.socket | None:
    """A UDP socket bound to ``address`` on a free port of the range, or None when
    the address cannot be bound at all (aioice skips such an address too)."""
    low, high = udp_ports
    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    first = random.randint(low, high)
    for port in (*range(first, high + 1), *range(low, first)):
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((address, port))
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                continue
            logger.info("could not bind an ICE host candidate to %s: %s", address, exc)
            return None
        return sock
    raise PortRangeExhausted(address, udp_ports)


def installed() -> bool:
    return (
        ice.Connection.request_received is _request_received
        and ice.Connection.get_component_candidates is _get_component_candidates
    )


def install() -> None:
    """Replace the two ``aioice.Connection`` methods; idempotent.

    Importing ``media`` changes nothing in aioice: :class:`media.Relay` calls this when
    it is created, before any of its connections gathers candidates.
    """
    if installed():
        return
    # aiortc and aioice offer no hook for either: assigning to the class is the seam
    ice.Connection.request_received = _request_received  # type: ignore[method-assign]
    ice.Connection.get_component_candidates = _get_component_candidates  # type: ignore[method-assign]
