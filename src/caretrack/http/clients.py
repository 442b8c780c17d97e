"""Who is calling, as HTTP tells it: the client's address (through trusted proxies) and
whether a request or handshake came from one of our own origins."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection
from starlette.types import Scope

from caretrack.core.settings import Settings


def client_address(scope: Scope) -> str | None:
    """The caller's address as the middleware resolved it (see `resolve_client_address`)."""
    state = scope.get("state") or {}
    if "client_address" in state:
        resolved: str | None = state["client_address"]
        return resolved
    client = scope.get("client")
    return client[0] if client else None


def address_of(request: HTTPConnection) -> str | None:
    """The caller's address of a request or WebSocket, for audit rows and rate limits."""
    return client_address(request.scope)


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in trusted)


def _parse_ip(text: str) -> IPAddress | None:
    """An address from a forwarded-for entry; some proxies append a port."""
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # 203.0.113.7:443
        text = text.split(":")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    # A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; match them as IPv4.
    return ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip


def resolve_client_address(scope: Scope, trusted_proxies: tuple[str, ...]) -> str | None:
    """The peer address, unless the peer is a trusted proxy: then the right-most address in
    X-Forwarded-For that is not a trusted proxy. Entries left of that one were written by
    the client itself and prove nothing."""
    client = scope.get("client")
    peer = client[0] if client else None
    networks = _networks(trusted_proxies)
    peer_ip = _parse_ip(peer) if peer else None
    if not networks or peer_ip is None or not any(peer_ip in net for net in networks):
        return peer
    chain = [item for name, value in scope.get("headers") or [] if name == b"x-forwarded-for"
             for item in value.decode("latin-1").split(",") if item.strip()]
    nearest = peer_ip
    for item in reversed(chain):
        ip = _parse_ip(item)
        if ip is None:  # a garbled hop: the last proxy we believe is as far as we can see
            break
        if not any(ip in net for net in networks):
            return str(ip)
        nearest = ip
    return str(nearest)


def origin_allowed(scope: Scope, settings: Settings) -> bool:
    """Origin (or, lacking it, Referer) must be one of ours."""
    headers = dict(scope.get("headers") or [])
    origin = headers.get(b"origin", b"").decode("latin-1")
    if not origin or origin == "null":
        referer = headers.get(b"referer", b"").decode("latin-1")
        if not referer:
            return False
        parts = urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    return origin in settings.origins
