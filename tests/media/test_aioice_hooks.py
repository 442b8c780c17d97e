"""Fail loudly if an aioice upgrade moves an internal media/_aioice_hooks.py replaces."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap

import aioice
from aioice import ice, turn

import media
from media import _aioice_hooks as ice_hooks


def params(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)


def calls_of(name: str) -> list[str]:
    """Names of the aioice.ice functions/methods whose source contains ``name``."""
    originals = {
        ice_hooks._request_received: ice_hooks._original_request_received,
        ice_hooks._get_component_candidates: ice_hooks._original_get_component_candidates,
    }
    found = []
    for owner in (ice, ice.Connection, ice.StunProtocol):
        for attr, value in vars(owner).items():
            function = originals.get(value, value) if inspect.isfunction(value) else value
            if inspect.isfunction(function) and function.__module__ == "aioice.ice":
                if name in inspect.getsource(function):
                    found.append(attr)
    return sorted(found)


def test_pinned_version() -> None:
    assert aioice.__version__.startswith(ice_hooks.PINNED_AIOICE)


def test_hooks_are_installed_with_the_original_signatures() -> None:
    media.Relay(media.RelayConfig())
    assert ice.Connection.request_received is ice_hooks._request_received
    assert ice.Connection.get_component_candidates is ice_hooks._get_component_candidates
    assert params(ice_hooks._original_request_received) == ["self", "message", "addr", "protocol"]
    assert params(ice_hooks._request_received) == ["self", "message", "addr", "protocol"]
    assert params(ice_hooks._original_get_component_candidates) == ["self", "component", "addresses", "timeout"]
    assert params(ice_hooks._get_component_candidates) == ["self", "component", "addresses", "timeout"]
    assert inspect.iscoroutinefunction(ice_hooks._original_get_component_candidates)


def test_importing_media_patches_nothing_and_the_relay_installs_once() -> None:
    script = textwrap.dedent("""
        from aioice import ice
        original = (ice.Connection.request_received, ice.Connection.get_component_candidates)
        import media
        from media import _aioice_hooks as ice_hooks
        assert (ice.Connection.request_received, ice.Connection.get_component_candidates) == original
        assert not ice_hooks.installed()
        media.Relay(media.RelayConfig())
        assert ice.Connection.request_received is ice_hooks._request_received
        assert ice.Connection.get_component_candidates is ice_hooks._get_component_candidates
        media.Relay(media.RelayConfig())
        ice_hooks.install()
        assert ice_hooks.installed()
        assert (ice_hooks._original_request_received, ice_hooks._original_get_component_candidates) == original
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_stun_requests_reach_the_connection_only_through_request_received() -> None:
    """Peer-reflexive candidates are learned in check_incoming, which only
    request_received (directly, or through the early-check queue) calls."""
    receive = inspect.getsource(ice.StunProtocol.datagram_received)
    assert "self.receiver.request_received(message, addr, self)" in receive
    assert calls_of('type="prflx"') == ["check_incoming"]
    assert calls_of("self.check_incoming(") == ["connect", "request_received"]
    assert calls_of("self._early_checks.append(") == ["request_received"]
    connect = inspect.getsource(ice.Connection.connect)
    assert "for early_check in self._early_checks:" in connect
    # answering is done in request_received itself
    original = inspect.getsource(ice_hooks._original_request_received)
    assert "protocol.send_stun(response, addr)" in original


def test_host_candidates_are_bound_where_the_hook_replaces_it() -> None:
    gather = inspect.getsource(ice.Connection.gather_candidates)
    assert "self.get_component_candidates(component=component, addresses=addresses)" in gather
    assert calls_of("create_datagram_endpoint(") == ["get_component_candidates"]
    original = inspect.getsource(ice_hooks._original_get_component_candidates)
    # what the replacement reproduces for its own sockets, and what it leaves to aioice
    for fragment in (
        "local_addr=(address, 0)",
        "turn.UDP_SOCKET_BUFFER_SIZE",
        'candidate_foundation("host", "udp", candidate_address[0])',
        'priority=candidate_priority(component, "host")',
        "server_reflexive_candidate(protocol, self.stun_server)",
        "for protocol in host_protocols:",
        "relayed_candidate(",
        "self._protocols += host_protocols",
    ):
        assert fragment in original, fragment
    assert params(ice.server_reflexive_candidate) == ["protocol", "stun_server"]
    assert params(ice.StunProtocol.__init__) == ["self", "receiver"]
    assert isinstance(turn.UDP_SOCKET_BUFFER_SIZE, int)


def test_connection_attributes_the_hooks_use() -> None:
    connection = ice.Connection(ice_controlling=False)
    assert connection._protocols == []
    assert connection.stun_server is None
    assert ice_hooks.policy_of(connection) is None
    # the host-candidate fields the replacement builds
    assert params(aioice.Candidate.__init__)[:8] == [
        "self", "foundation", "component", "transport", "priority", "host", "port", "type"
    ]
