"""Cross-site forgery: page forms refuse a foreign or missing Origin even without a session
(login CSRF), and every cookie-authenticated state change needs the CSRF token."""

from __future__ import annotations

import httpx
import pytest

from caretrack.accounts.models import AccessToken, User
from caretrack.accounts.sessions import digest, new_access_token_secret
from tests.conftest import TEST_BASE_URL
from tests.helpers import PASSWORD, csrf_token, login, make_user


@pytest.fixture
async def bare(app):
    """A client that sends no Origin unless told to (as a script or a webhook would)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=TEST_BASE_URL) as c:
        yield c


FOREIGN = {"origin": "https://evil.example"}


async def test_login_from_a_foreign_origin_is_refused_and_sets_no_cookie(bare):
    await make_user(email="victim@example.org")
    for headers in (FOREIGN, {}, {"origin": "null"}, {"referer": "https://evil.example/form"}):
        response = await bare.post("/login", data={"email": "victim@example.org", "password": PASSWORD},
                                   headers=headers)
        assert response.status_code == 403, headers
        assert "set-cookie" not in response.headers
        assert "sent from another site, or without an Origin header" in response.text
    same_site = await bare.post("/login", data={"email": "victim@example.org", "password": PASSWORD},
                                headers={"referer": f"{TEST_BASE_URL}/login"})
    assert same_site.status_code == 303 and "caretrack_session" in same_site.headers["set-cookie"]


async def test_signup_from_a_foreign_origin_creates_nothing(bare):
    response = await bare.post("/signup", data={"email": "forged@example.org", "full_name": "Forged",
                                                "password": PASSWORD}, headers=FOREIGN)
    assert response.status_code == 403 and "set-cookie" not in response.headers
    assert not await User.exists(email="forged@example.org")


@pytest.mark.parametrize("path", ["/password/forgot", "/password/reset", "/verify-email", "/invite/accept",
                                  "/logout"])
async def test_every_cookieless_page_form_refuses_a_foreign_origin(bare, path):
    response = await bare.post(path, data={"email": "a@example.org", "token": "x", "password": PASSWORD,
                                           "password_again": PASSWORD}, headers=FOREIGN)
    assert response.status_code == 403
    assert "sent from another site" in response.text and "<html" in response.text.lower()


async def test_machine_to_machine_calls_carry_no_origin_and_still_work(bare):
    # the payment webhook is judged by its signature, not its Origin (no provider here: 404)
    hook = await bare.post("/api/v1/payments/webhooks/stripe", content=b"{}",
                           headers={"content-type": "application/json"})
    assert hook.status_code == 404 and "No payment provider" in hook.json()["error"]["message"]
    user = await make_user(email="script@example.org")
    secret = new_access_token_secret()
    await AccessToken.create(user=user, name="cron", token_hash=digest(secret), prefix=secret[:12])
    changed = await bare.patch("/api/v1/me/profile", json={"full_name": "Cron Job"},
                               headers={"authorization": f"Bearer {secret}"})
    assert changed.status_code == 200 and changed.json()["full_name"] == "Cron Job"


FORM = {"content-type": "application/x-www-form-urlencoded"}


async def test_a_bodyless_api_call_with_a_form_content_type_still_needs_the_csrf_header(client):
    user = await make_user(email="tokens@example.org")
    await login(client, "tokens@example.org")
    secret = new_access_token_secret()
    token = await AccessToken.create(user=user, name="laptop", token_hash=digest(secret), prefix=secret[:12])
    forged = await client.delete(f"/api/v1/me/tokens/{token.id}", headers=FORM)
    assert forged.status_code == 403 and "x-csrf-token" in forged.json()["error"]["message"]
    assert (await AccessToken.get(id=token.id)).revoked_at is None
    forged_post = await client.post("/api/v1/me/tokens", content=b"name=evil", headers=FORM)
    assert forged_post.status_code == 403
    assert await AccessToken.filter(user_id=user.id).count() == 1
    ok = await client.delete(f"/api/v1/me/tokens/{token.id}", headers={"x-csrf-token": await csrf_token(client)})
    assert ok.status_code == 204


async def test_a_page_post_without_a_form_parameter_checks_the_forms_token(client):
    user = await make_user(email="revoke@example.org")
    await login(client, "revoke@example.org")
    secret = new_access_token_secret()
    token = await AccessToken.create(user=user, name="laptop", token_hash=digest(secret), prefix=secret[:12])
    forged = await client.post(f"/account/tokens/{token.id}/revoke", content=b"", headers=FORM)
    assert forged.status_code == 403
    assert (await AccessToken.get(id=token.id)).revoked_at is None
    ok = await client.post(f"/account/tokens/{token.id}/revoke", data={"csrf_token": await csrf_token(client)})
    assert ok.status_code == 303
    assert (await AccessToken.get(id=token.id)).revoked_at is not None
