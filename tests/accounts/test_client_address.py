"""Which address is the client: X-Forwarded-For is believed only from configured proxies."""

from __future__ import annotations

import httpx
import pytest

from caretrack.core.audit.models import AuditEntry
from caretrack.core.settings import Settings, SettingsError
from caretrack.http.clients import resolve_client_address
from tests.conftest import TEST_BASE_URL
from tests.helpers import login, make_user


def scope(peer: str, *forwarded: str) -> dict:
    return {"client": (peer, 51000), "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded]}


PROXIES = ("10.0.0.5", "172.16.0.0/12", "2001:db8::/32")


@pytest.mark.parametrize(("request_scope", "trusted", "expected"), [
    # no proxies configured: a client cannot choose its address
    (scope("198.51.100.7", "203.0.113.1"), (), "198.51.100.7"),
    # an untrusted peer sending the header is ignored (spoofing)
    (scope("198.51.100.7", "203.0.113.1"), PROXIES, "198.51.100.7"),
    # a trusted proxy: the address it saw
    (scope("10.0.0.5", "203.0.113.1"), PROXIES, "203.0.113.1"),
    # a chain: the right-most address that is not ours; the left part was written by the client
    (scope("10.0.0.5", "1.2.3.4, 203.0.113.1, 172.20.0.9"), PROXIES, "203.0.113.1"),
    # several headers count as one list, in order
    (scope("10.0.0.5", "1.2.3.4", "203.0.113.1, 172.20.0.9"), PROXIES, "203.0.113.1"),
    # ports and IPv6
    (scope("10.0.0.5", "203.0.113.1:4711"), PROXIES, "203.0.113.1"),
    (scope("2001:db8::1", "[2001:db9::7]:443"), PROXIES, "2001:db9::7"),
    # a garbled entry: as far as the nearest trusted hop
    (scope("10.0.0.5", "not-an-ip, 172.20.0.9"), PROXIES, "172.20.0.9"),
    # a dual-stack listener's IPv4-mapped peer matches an IPv4 proxy
    (scope("::ffff:10.0.0.5", "203.0.113.1"), PROXIES, "203.0.113.1"),
    # a trusted peer without the header is the client
    (scope("10.0.0.5"), PROXIES, "10.0.0.5"),
])
def test_forwarded_for_is_believed_only_from_trusted_proxies(request_scope, trusted, expected):
    assert resolve_client_address(request_scope, trusted) == expected


def test_the_setting_is_validated_and_named():
    settings = Settings.from_env({"CARETRACK_TRUSTED_PROXIES": "10.0.0.5, 172.16.0.0/12"})
    assert settings.trusted_proxies == ("10.0.0.5/32", "172.16.0.0/12")
    assert Settings.from_env({}).trusted_proxies == ()
    with pytest.raises(SettingsError, match="CARETRACK_TRUSTED_PROXIES has 'proxy.internal'"):
        Settings.from_env({"CARETRACK_TRUSTED_PROXIES": "proxy.internal"})


@pytest.fixture
def settings(database_url):
    from tests.conftest import base_settings

    return base_settings(database_url=database_url, trusted_proxies=("127.0.0.1",))


async def test_the_audit_log_records_the_forwarded_client_behind_a_trusted_proxy(app):
    user = await make_user(email="behind@example.org")
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL,
                                 headers={"origin": TEST_BASE_URL, "x-forwarded-for": "203.0.113.50"}) as proxied:
        assert (await login(proxied, "behind@example.org")).status_code == 303
    transport = httpx.ASGITransport(app=app, client=("198.51.100.9", 40000))
    async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL,
                                 headers={"origin": TEST_BASE_URL, "x-forwarded-for": "203.0.113.99"}) as direct:
        assert (await login(direct, "behind@example.org")).status_code == 303
    addresses = await AuditEntry.filter(action="login.succeeded", subject_id=str(user.id)).order_by("seq") \
        .values_list("client_address", flat=True)
    assert addresses == ["203.0.113.50", "198.51.100.9"]
