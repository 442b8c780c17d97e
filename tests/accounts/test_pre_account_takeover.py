"""Anyone can sign up with anyone's address. The owner who confirms it must end up with their
own password, never with the one a stranger chose in an earlier sign-up."""

from __future__ import annotations

import pytest

from caretrack.accounts.models import User
from caretrack.accounts.ratelimit import LoginLimiter
from caretrack.core.roles import Role
from caretrack.mail.models import OutboundEmail
from tests.helpers import PASSWORD, fragment_token, login

ATTACKER_PASSWORD = "the attacker's own phrase"


@pytest.fixture
async def pinned(app) -> None:
    """The app's limiter on a clock that stands still: waits never run out by themselves."""
    await app.state.login_limiter.close()
    app.state.login_limiter = LoginLimiter(app.state.settings.redis_url, clock=lambda: 1_800_000_000.0)


async def sign_up(client, password: str, name: str, role: str = "patient"):
    response = await client.post("/signup", data={"email": "victim@example.org", "full_name": name,
                                                  "password": password, "role": role})
    assert response.status_code == 200 and "We have sent an email" in response.text
    return response


async def links() -> list[str]:
    return [fragment_token(e.text_body, "/verify-email")
            for e in await OutboundEmail.filter(to_address="victim@example.org").order_by("id")]


async def test_the_owners_confirmation_sets_the_owners_password_not_an_earlier_sign_ups(client, pinned):
    first = await sign_up(client, ATTACKER_PASSWORD, "Mallory", role="doctor")
    owners = await sign_up(client, PASSWORD, "Vic Owner")
    assert owners.text.replace(owners.headers["x-request-id"], "") == \
        first.text.replace(first.headers["x-request-id"], ""), "the same answer: nothing is revealed"
    await sign_up(client, ATTACKER_PASSWORD, "Mallory", role="doctor")  # a later one cancels nothing
    attacker_link, owner_link, attacker_again = await links()
    confirmed = await client.post("/verify-email", data={"token": owner_link})
    assert "Your email address is confirmed" in confirmed.text

    user = await User.get(email="victim@example.org")
    assert (user.full_name, user.role) == ("Vic Owner", Role.PATIENT)
    assert (await login(client, "victim@example.org", ATTACKER_PASSWORD)).status_code == 401
    assert (await login(client, "victim@example.org")).headers["location"] == "/patient"
    for stale in (attacker_link, attacker_again):  # the other links end with the confirmation
        client.cookies.clear()
        assert (await client.post("/verify-email", data={"token": stale})).status_code == 422
    assert (await login(client, "victim@example.org", ATTACKER_PASSWORD)).status_code == 401


async def test_a_throttled_unconfirmed_sign_up_gets_no_sign_in_link(client, pinned):
    await sign_up(client, ATTACKER_PASSWORD, "Mallory")
    for _ in range(6):
        await login(client, "victim@example.org", "a wrong guess")
    refused = await login(client, "victim@example.org", ATTACKER_PASSWORD)
    assert refused.status_code == 429
    [email] = await OutboundEmail.filter(to_address="victim@example.org")
    assert "/verify-email#" in email.text_body, "only the confirmation of the sign-up itself, no sign-in link"
    assert (await User.get(email="victim@example.org")).email_verified_at is None
