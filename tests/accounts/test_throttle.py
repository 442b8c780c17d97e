"""Brute force is slowed without locking the owner out; password-reset requests are limited;
the limits keep working (in memory) while Redis is down. Time is a pinned clock."""

from __future__ import annotations

import asyncio

import httpx
import pyotp
import pytest
from asgi_lifespan import LifespanManager
from structlog.testing import capture_logs

from caretrack.accounts.models import User
from caretrack.accounts.ratelimit import (
    MAX_DELAY_SECONDS,
    LoginLimiter,
    SignInThrottled,
    address_key,
    delay_after,
)
from caretrack.core.audit.models import AuditEntry
from caretrack.mail.models import OutboundEmail
from caretrack.site.app import create_app
from tests.conftest import TEST_BASE_URL, free_port
from tests.helpers import PASSWORD, csrf_token, fragment_token, last_email_to, login, make_user

START = 1_800_000_000.0  # 2027-01-15T08:00:00Z, an instant on the hour


class Clock:
    def __init__(self, at: float = START) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += seconds


@pytest.fixture
async def clock(app) -> Clock:
    """The app's limiter, on a clock the test moves."""
    pinned = Clock()
    await app.state.login_limiter.close()
    app.state.login_limiter = LoginLimiter(app.state.settings.redis_url, clock=pinned)
    return pinned


@pytest.fixture(params=["memory", "redis"])
async def backend(app, request) -> Clock:
    """The app's limiter on a clock the test moves, counting in memory or in Redis."""
    import redis.asyncio as aioredis

    from tests.conftest import REDIS_TEST_URL, unavailable

    pinned = Clock()
    await app.state.login_limiter.close()
    url = REDIS_TEST_URL if request.param == "redis" else None
    if url:
        async with aioredis.Redis.from_url(url) as probe:
            try:
                await asyncio.wait_for(probe.flushdb(), 3)
            except Exception as exc:
                unavailable(f"Redis at {url} ({exc})")
    app.state.login_limiter = LoginLimiter(url, clock=pinned)
    yield pinned
    if url:
        async with aioredis.Redis.from_url(url) as probe:
            await probe.flushdb()


def test_delays_double_after_the_free_failures_and_are_capped():
    assert [delay_after(n, 5) for n in range(1, 10)] == [0, 0, 0, 0, 2, 4, 8, 16, 32]
    assert delay_after(14, 5) == delay_after(10_000, 5) == MAX_DELAY_SECONDS == 900


async def test_failures_make_each_try_wait_longer_and_the_right_password_works_after_the_wait(client, clock):
    await make_user(email="owner@example.org")
    for _ in range(5):
        assert (await login(client, "owner@example.org", "a wrong guess")).status_code == 401
    # the 5th failure starts a 2-second wait: during it even the right password is not checked
    waiting = await login(client, "owner@example.org")
    assert waiting.status_code == 429 and "wait 2 seconds before the next try" in waiting.text
    assert waiting.headers["retry-after"] == "2"
    assert "caretrack_session" not in client.cookies
    clock.advance(2)
    assert (await login(client, "owner@example.org", "another guess")).status_code == 401
    clock.advance(3)
    assert "wait 1 second before" in (await login(client, "owner@example.org")).text
    clock.advance(1)
    signed_in = await login(client, "owner@example.org")
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/patient"
    # a success starts the account afresh
    assert (await login(client, "owner@example.org", "a typo")).status_code == 401
    assert (await login(client, "owner@example.org")).status_code == 303
    assert await AuditEntry.filter(action="account.locked").count() == 1


async def test_a_try_during_the_wait_tells_the_attacker_nothing(client, clock):
    await make_user(email="quiet@example.org")
    for _ in range(5):
        await login(client, "quiet@example.org", "a wrong guess")
    right = await login(client, "quiet@example.org")
    wrong = await login(client, "quiet@example.org", "a wrong guess")
    assert right.status_code == wrong.status_code == 429
    def page(response):
        return response.text.replace(response.headers["x-request-id"], "")

    assert page(right) == page(wrong)
    # and the waits are the same for an address that has no account
    for _ in range(5):
        await login(client, "nobody@example.org", "a wrong guess")
    assert (await login(client, "nobody@example.org")).status_code == 429


async def test_the_owner_of_a_throttled_account_signs_in_by_emailed_link_and_still_gives_the_second_factor(
        client, clock):
    secret = pyotp.random_base32()
    await make_user("doctor", "doc@example.org", totp_secret=secret)
    for failures in range(1, 13):  # an attacker, who waits out every delay: the wait is now minutes long
        assert (await login(client, "doc@example.org", "a wrong guess")).status_code == 401
        if failures < 12:
            clock.advance(delay_after(failures, 5))
    assert not await OutboundEmail.exists(to_address="doc@example.org")
    refused = await login(client, "doc@example.org")
    assert refused.status_code == 429 and "we have emailed it a link that signs you in without waiting" in refused.text
    token = fragment_token((await last_email_to("doc@example.org")).text_body, "/login/link")
    assert (await client.get("/login/link")).status_code == 200
    used = await client.post("/login/link", data={"token": token})
    assert used.status_code == 303 and used.headers["location"] == "/mfa/verify"
    assert (await client.get("/doctor")).headers["location"] == "/mfa/verify"
    code = pyotp.TOTP(secret).now()
    token = await csrf_token(client, "/mfa/verify")
    verified = await client.post("/mfa/verify", data={"code": code, "csrf_token": token})
    assert verified.status_code == 303 and (await client.get("/doctor")).status_code == 200
    # the link works once; the account starts afresh for the owner's password
    client.cookies.clear()
    assert (await client.post("/login/link", data={"token": token})).status_code == 422
    assert (await login(client, "doc@example.org")).headers["location"] == "/mfa/verify"
    assert await AuditEntry.filter(action="login.link_used").count() == 1


async def test_sign_in_links_are_limited_per_hour(client, clock):
    await make_user(email="flood@example.org")
    for _ in range(5):
        await login(client, "flood@example.org", "a wrong guess")
    for _ in range(6):
        assert (await login(client, "flood@example.org")).status_code == 429
    assert await OutboundEmail.filter(to_address="flood@example.org").count() == 3
    clock.advance(3600)
    await login(client, "flood@example.org", "a wrong guess")
    await login(client, "flood@example.org")
    assert await OutboundEmail.filter(to_address="flood@example.org").count() == 4


async def test_second_factor_guesses_are_throttled_too(client, clock):
    secret = pyotp.random_base32()
    await make_user("admin", "boss@example.org", totp_secret=secret)
    await login(client, "boss@example.org")
    token = await csrf_token(client, "/mfa/verify")
    for _ in range(5):
        assert (await client.post("/mfa/verify", data={"code": "000000", "csrf_token": token})).status_code == 422
    waiting = await client.post("/mfa/verify", data={"code": pyotp.TOTP(secret).now(), "csrf_token": token})
    assert waiting.status_code == 429 and "Too many failed two-factor codes for this account: wait 2 seconds" \
        in waiting.text and "emailed" not in waiting.text
    clock.advance(2)
    assert (await client.post("/mfa/verify", data={"code": pyotp.TOTP(secret).now(),
                                                    "csrf_token": token})).status_code == 303


async def test_many_clients_behind_one_trusted_proxy_are_throttled_separately(settings):
    app = create_app(settings.replace(trusted_proxies=("10.0.0.0/8",)))
    async with LifespanManager(app):
        await app.state.login_limiter.close()
        app.state.login_limiter = LoginLimiter(None, clock=Clock())

        def behind_proxy(client_ip: str) -> httpx.AsyncClient:
            return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("10.0.0.2", 5000)),
                                     base_url=TEST_BASE_URL,
                                     headers={"origin": TEST_BASE_URL, "x-forwarded-for": client_ip})

        await make_user(email="bystander@example.org")
        async with behind_proxy("198.51.100.66") as sprayer, behind_proxy("203.0.113.5") as bystander:
            for n in range(20):  # one address trying many accounts
                assert (await login(sprayer, f"user{n}@example.org", "a wrong guess")).status_code == 401
            sprayed = await login(sprayer, "fresh@example.org", "a wrong guess")
            assert sprayed.status_code == 429 and "failed sign-ins for your network address: wait 2" in sprayed.text
            assert (await login(bystander, "bystander@example.org")).status_code == 303


async def test_password_reset_emails_are_limited_per_address_and_requests_per_client(client, clock):
    await make_user(email="reset@example.org")
    answers = [await client.post("/password/forgot", data={"email": "reset@example.org"}) for _ in range(5)]
    assert {a.status_code for a in answers} == {200}
    assert len({a.text.replace(a.headers["x-request-id"], "") for a in answers}) == 1, "the page never changes"
    assert await OutboundEmail.filter(to_address="reset@example.org").count() == 3
    assert await AuditEntry.filter(action="password.reset_throttled").count() == 2
    for n in range(15):
        assert (await client.post("/password/forgot", data={"email": f"x{n}@example.org"})).status_code == 200
    refused = await client.post("/password/forgot", data={"email": "reset@example.org"})
    assert refused.status_code == 429 and refused.headers["retry-after"] == "3600"
    assert "Too many password-reset requests from your network address this hour: try again in 60 minutes" \
        in refused.text
    clock.advance(3600)
    assert (await client.post("/password/forgot", data={"email": "reset@example.org"})).status_code == 200
    assert await OutboundEmail.filter(to_address="reset@example.org").count() == 4


async def test_an_unreachable_redis_falls_back_to_memory_and_warns_once():
    pinned = Clock()
    limiter = LoginLimiter(f"redis://127.0.0.1:{free_port()}/0", clock=pinned)
    try:
        with capture_logs() as logs:
            for _ in range(5):
                await limiter.attempt("a@example.org", "198.51.100.1")
            with pytest.raises(SignInThrottled, match="wait 2 seconds"):
                await limiter.attempt("a@example.org", "198.51.100.1")
        warnings = [entry for entry in logs if entry["log_level"] == "warning"]
        assert [w["event"] for w in warnings] == [
            "Redis unreachable: sign-in limits are counted in this process's memory until it answers"]
        assert limiter.counters.using_memory
    finally:
        await limiter.close()


async def test_sign_in_works_while_redis_is_down_and_counts_go_back_to_redis_when_it_returns(settings, private_redis):
    import redis.asyncio as aioredis

    app = create_app(settings.replace(redis_url=private_redis.url))
    pinned = Clock()
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        await app.state.login_limiter.close()
        app.state.login_limiter = LoginLimiter(private_redis.url, clock=pinned)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=TEST_BASE_URL,
                                     headers={"origin": TEST_BASE_URL}) as client:
            await make_user(email="steady@example.org")
            assert (await login(client, "steady@example.org", "a wrong guess")).status_code == 401
            async with aioredis.Redis.from_url(private_redis.url) as probe:
                assert await probe.keys("caretrack-limits:fail:*")
            private_redis.kill()
            with capture_logs() as logs:
                assert (await login(client, "steady@example.org", "a wrong guess")).status_code == 401
                assert (await login(client, "steady@example.org")).status_code == 303
                assert (await login(client, "steady@example.org")).status_code == 303
            assert sum("Redis unreachable" in entry["event"] for entry in logs) == 1
            private_redis.start()
            await private_redis.wait_ready()  # a fresh, empty Redis
            pinned.advance(5)
            with capture_logs() as logs:
                assert (await login(client, "steady@example.org", "a wrong guess")).status_code == 401
            assert any("Redis answers again" in entry["event"] for entry in logs)
            assert not app.state.login_limiter.counters.using_memory
            async with aioredis.Redis.from_url(private_redis.url) as probe:
                assert await probe.keys("caretrack-limits:fail:password:account:steady@example.org")


async def test_parallel_wrong_passwords_get_only_the_free_checks(client, app, monkeypatch, backend):
    from caretrack.accounts import passwords

    await make_user(email="target@example.org")
    checked = []
    verify = passwords.verify_password

    def counting(stored, given):
        checked.append(given)
        return verify(stored, given)

    monkeypatch.setattr(passwords, "verify_password", counting)
    answers = await asyncio.gather(*(client.post("/login", data={"email": "target@example.org",
                                                                  "password": f"guess {n}"}) for n in range(20)))
    assert len(checked) == 5, "each try is counted before its password is checked"
    assert sorted(a.status_code for a in answers) == [401] * 5 + [429] * 15
    backend.advance(2)
    assert (await login(client, "target@example.org")).status_code == 303


async def test_parallel_wrong_second_factor_codes_get_only_the_free_checks(client, app, monkeypatch, backend):
    from caretrack.accounts.service import mfa as service

    secret = pyotp.random_base32()
    await make_user("doctor", "burst@example.org", totp_secret=secret)
    await login(client, "burst@example.org")
    token = await csrf_token(client, "/mfa/verify")
    checked = []
    accept = service._accept_totp_code

    async def counting(tx, user, code):
        checked.append(code)
        return await accept(tx, user, code)

    monkeypatch.setattr(service, "_accept_totp_code", counting)
    answers = await asyncio.gather(*(client.post("/mfa/verify", data={"code": f"{n:06d}", "csrf_token": token})
                                     for n in range(20)))
    assert len(checked) == 5
    assert sorted(a.status_code for a in answers) == [422] * 5 + [429] * 15


async def test_password_failures_behind_an_address_do_not_refuse_the_owners_second_factor(client, clock):
    secret = pyotp.random_base32()
    await make_user("doctor", "doc@example.org", totp_secret=secret)
    for _ in range(5):  # the account is throttled ...
        await login(client, "doc@example.org", "a wrong guess")
    for n in range(15):  # ... and so is the address, by password failures for other accounts
        await login(client, f"sprayed{n}@example.org", "a wrong guess")
    assert "for your network address" in (await login(client, "someone@example.org", "a guess")).text
    assert (await login(client, "doc@example.org")).status_code == 429
    token = fragment_token((await last_email_to("doc@example.org")).text_body, "/login/link")
    assert (await client.post("/login/link", data={"token": token})).headers["location"] == "/mfa/verify"
    verified = await client.post("/mfa/verify", data={"code": pyotp.TOTP(secret).now(),
                                                       "csrf_token": await csrf_token(client, "/mfa/verify")})
    assert verified.status_code == 303 and (await client.get("/doctor")).status_code == 200


async def test_a_throttled_address_makes_us_email_nobody(client, clock):
    await make_user(email="bystander@example.org")
    for n in range(20):
        await login(client, f"made-up{n}@example.org", "a wrong guess")
    refused = await login(client, "bystander@example.org")
    assert refused.status_code == 429 and "for your network address" in refused.text
    assert "emailed" not in refused.text
    assert not await OutboundEmail.exists(to_address="bystander@example.org")


async def test_ipv6_clients_are_counted_by_their_64_and_mapped_ipv4_as_ipv4():
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:ffff::2") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert address_key("::ffff:198.51.100.7") == address_key("198.51.100.7") == "198.51.100.7"
    assert address_key("198.51.100.8") != address_key("198.51.100.7")
    limiter = LoginLimiter(None, clock=Clock())
    for n in range(20):  # a new address from the same /64 for every try
        await limiter.attempt(f"user{n}@example.org", f"2001:db8:1:2::{n + 1:x}")
    with pytest.raises(SignInThrottled) as refused:
        await limiter.attempt("another@example.org", "2001:db8:1:2:dead:beef:0:1")
    assert refused.value.scope == "address"
    await limiter.attempt("another@example.org", "2001:db8:1:3::1")  # the next /64 is someone else


async def test_flooding_made_up_emails_does_not_end_a_victims_wait(monkeypatch):
    from caretrack.accounts import counters

    monkeypatch.setattr(counters, "MEMORY_MAX_KEYS", 10)
    limiter = LoginLimiter(None, clock=Clock())
    for _ in range(5):
        await limiter.attempt("victim@example.org", "198.51.100.1")
    for n in range(30):
        await limiter.attempt(f"made-up{n}@example.org", f"203.0.113.{n}")
        assert len(limiter.counters.memory._failures) <= 10
    with pytest.raises(SignInThrottled) as refused:
        await limiter.attempt("victim@example.org", "203.0.113.200")
    assert refused.value.scope == "account"
    # full of records that all still throttle: a newcomer waits rather than one of them going
    monkeypatch.setattr(counters, "MEMORY_MAX_KEYS", 3)
    limiter = LoginLimiter(None, clock=Clock())
    for email in ("first@example.org", "second@example.org"):  # two accounts and their one address
        for _ in range(5):
            await limiter.attempt(email, None)
    assert len(limiter.counters.memory._failures) == 3
    with pytest.raises(SignInThrottled, match="wait 60 seconds"):
        await limiter.attempt("newcomer@example.org", None)
    for email in ("first@example.org", "second@example.org"):
        with pytest.raises(SignInThrottled, match="wait 2 seconds"):
            await limiter.attempt(email, None)


async def test_a_sign_in_link_never_confirms_an_address(client, clock):
    """Anyone can sign up with anyone's address: the owner's click on a sign-in link must not
    confirm the account a stranger chose the password of."""
    from caretrack.accounts.links import issue_token
    from caretrack.core.transaction import atomic

    user = await make_user(email="unconfirmed@example.org")
    await User.filter(id=user.id).update(email_verified_at=None)
    for _ in range(5):
        await login(client, "unconfirmed@example.org", "a wrong guess")
    assert (await login(client, "unconfirmed@example.org")).status_code == 429
    assert not await OutboundEmail.exists(to_address="unconfirmed@example.org"), "no sign-in link is sent"
    async with atomic() as tx:  # and a link sent before this rule is refused
        token = await issue_token(tx, user, "unlock")
    refused = await client.post("/login/link", data={"token": token})
    assert refused.status_code == 403 and "Confirm your email address first" in refused.text
    assert "caretrack_session" not in client.cookies
    assert (await User.get(id=user.id)).email_verified_at is None


async def test_sign_ups_are_limited_per_client(client, clock):
    for n in range(20):
        assert (await client.post("/signup", data={"full_name": "New Person", "email": f"new{n}@example.org",
                                                   "password": PASSWORD})).status_code == 200
    refused = await client.post("/signup", data={"full_name": "New Person", "email": "one-more@example.org",
                                                  "password": PASSWORD})
    assert refused.status_code == 429 and refused.headers["retry-after"] == "3600"
    assert "Too many sign-ups from your network address this hour: try again in 60 minutes" in refused.text
    assert not await User.exists(email="one-more@example.org")
    assert not await OutboundEmail.exists(to_address="one-more@example.org")
    clock.advance(3600)
    assert (await client.post("/signup", data={"full_name": "New Person", "email": "one-more@example.org",
                                               "password": PASSWORD})).status_code == 200


async def test_failures_are_forgotten_after_a_day_and_a_try_costs_one_redis_round_trip(redis_url, monkeypatch):
    import redis.asyncio as aioredis

    from caretrack.accounts.ratelimit import FORGET_AFTER_SECONDS

    clock = Clock()
    limiter = LoginLimiter(redis_url, clock=clock)
    sent = []
    execute = aioredis.Redis.execute_command

    async def counting(self, *args, **options):
        sent.append(args[0])
        return await execute(self, *args, **options)

    try:
        for _ in range(5):
            await limiter.attempt("daily@example.org", "198.51.100.4")
        with pytest.raises(SignInThrottled):
            await limiter.attempt("daily@example.org", "198.51.100.4")
        monkeypatch.setattr(aioredis.Redis, "execute_command", counting)
        clock.advance(FORGET_AFTER_SECONDS + 1)
        assert await limiter.attempt("daily@example.org", "198.51.100.4") == 1, "a day later: afresh"
        assert sent == ["EVALSHA"], "reading, forgetting and counting are one script call"
        assert not limiter.counters.using_memory
    finally:
        await limiter.close()


async def test_successful_sign_ins_give_their_try_back_to_the_address(client, clock):
    await make_user(email="regular@example.org")
    for _ in range(25):  # more than the address's free failures, all of them right
        assert (await login(client, "regular@example.org")).status_code == 303
    assert (await login(client, "regular@example.org", "one typo")).status_code == 401
