"""Sign-up, login, sessions, CSRF, access tokens: over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from caretrack.accounts.models import Session, User
from caretrack.accounts.sessions import digest, now
from caretrack.core.audit.models import AuditEntry
from caretrack.core.roles import Role
from tests.helpers import PASSWORD, csrf_token, fragment_token, last_email_to, login, make_user


async def test_patient_signs_up_confirms_the_email_once_then_signs_in(client):
    response = await client.post("/signup", data={"role": "patient", "full_name": "Pia Patient",
                                                   "email": "Pia@Example.org", "password": PASSWORD})
    assert response.status_code == 200 and "We have sent an email to <strong>Pia@Example.org" in response.text
    assert "set-cookie" not in response.headers, "sign-up does not sign in: the address is confirmed first"
    user = await User.get(email="pia@example.org")
    assert user.role == Role.PATIENT and user.email_verified_at is None
    early = await login(client, "pia@example.org")
    assert early.status_code == 403 and "Confirm your email address first" in early.text
    assert "caretrack_session" not in client.cookies

    email = await last_email_to("pia@example.org")
    token = fragment_token(email.text_body, "/verify-email")
    assert token not in email.to_address
    first = await client.post("/verify-email", data={"token": token})
    assert "Your email address is confirmed" in first.text and 'href="/login"' in first.text
    assert (await User.get(id=user.id)).email_verified_at is not None
    again = await client.post("/verify-email", data={"token": token})
    assert again.status_code == 422 and "invalid, used or expired" in again.text
    signed_in = await login(client, "pia@example.org")
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/patient"


async def test_signup_refuses_weak_passwords(client):
    cases = {"short": "too short", "password123": "most common", "pia-patient-secret": "email address"}
    for password, message in cases.items():
        response = await client.post("/signup", data={"full_name": "Pia", "email": "pia-patient@example.org",
                                                       "password": password})
        assert response.status_code == 422 and message in response.text, password
    assert not await User.exists(email="pia-patient@example.org")


async def test_signup_never_reveals_that_an_email_is_registered(client):
    owner = await make_user(email="taken@example.org", name="Tom Taken")
    new = await client.post("/signup", data={"full_name": "X", "email": "fresh@example.org", "password": PASSWORD})
    taken = await client.post("/signup", data={"full_name": "X", "email": "taken@example.org", "password": PASSWORD})
    assert new.status_code == taken.status_code == 200
    assert new.text.replace("fresh@example.org", "ADDRESS") == taken.text.replace("taken@example.org", "ADDRESS")
    assert "set-cookie" not in new.headers and "set-cookie" not in taken.headers
    assert await User.filter(email="taken@example.org").count() == 1
    assert (await User.get(id=owner.id)).full_name == "Tom Taken"
    notice = await last_email_to("taken@example.org")
    assert "tried to create a CareTrack account with this email address" in notice.text_body
    assert "http://testserver/password/forgot" in notice.text_body
    assert "/verify-email" in (await last_email_to("fresh@example.org")).text_body
    # an unconfirmed sign-up that signs up again gets a fresh confirmation link instead
    again = await client.post("/signup", data={"full_name": "X", "email": "fresh@example.org", "password": PASSWORD})
    assert again.text == new.text
    from caretrack.mail.models import OutboundEmail

    links = [fragment_token(e.text_body, "/verify-email")
             for e in await OutboundEmail.filter(to_address="fresh@example.org").order_by("id")]
    assert len(links) == 2 and links[0] != links[1]
    assert (await client.post("/verify-email", data={"token": links[1]})).status_code == 200
    # repeated attempts cannot flood the owner's mailbox
    for _ in range(5):
        await client.post("/signup", data={"full_name": "X", "email": "taken@example.org", "password": PASSWORD})
    assert await OutboundEmail.filter(to_address="taken@example.org").count() == 3


async def test_a_64_character_passphrase_works(client):
    passphrase = "a long passphrase of many words " * 2
    await make_user(email="long@example.org", password=passphrase)
    assert (await login(client, "long@example.org", passphrase)).status_code == 303


async def test_login_sets_a_safe_cookie_and_a_new_session_id_each_time(client):
    await make_user(email="carla@example.org", role=Role.CARER)
    first = await login(client, "carla@example.org")
    assert first.headers["location"] == "/carer"
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Path=/" in cookie
    first_id = client.cookies["caretrack_session"]
    assert len(first_id) >= 32
    assert await Session.exists(id=digest(first_id))
    assert not await Session.exists(id=first_id), "the raw session id must not be stored"
    second = await login(client, "carla@example.org")
    assert second.status_code == 303 and client.cookies["caretrack_session"] != first_id


async def test_wrong_password_is_refused_and_audited(client):
    user = await make_user(email="wrong@example.org")
    response = await login(client, "wrong@example.org", "not the password")
    assert response.status_code == 401 and "email or password is wrong" in response.text
    assert await AuditEntry.filter(action="login.failed", subject_id=str(user.id)).count() == 1


async def test_cookie_replayed_after_logout_is_refused(client):
    await make_user(email="leaver@example.org")
    await login(client, "leaver@example.org")
    cookie = client.cookies["caretrack_session"]
    token = await csrf_token(client)
    assert (await client.post("/logout", data={"csrf_token": token})).status_code == 303
    client.cookies.set("caretrack_session", cookie)
    page = await client.get("/account")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert (await client.get("/api/v1/me")).status_code == 401


async def test_a_deactivated_users_session_stops_working(client):
    user = await make_user(email="gone@example.org")
    await login(client, "gone@example.org")
    assert (await client.get("/api/v1/me")).status_code == 200
    await User.filter(id=user.id).update(is_active=False)
    assert (await client.get("/api/v1/me")).status_code == 401


async def test_idle_and_absolute_timeouts(client, settings):
    await make_user(email="idle@example.org")
    await login(client, "idle@example.org")
    session_id = digest(client.cookies["caretrack_session"])
    idle_since = now() - timedelta(minutes=settings.session_idle_minutes + 1)
    await Session.filter(id=session_id).update(last_seen_at=idle_since)
    assert (await client.get("/api/v1/me")).status_code == 401

    await login(client, "idle@example.org")
    session_id = digest(client.cookies["caretrack_session"])
    assert (await client.get("/api/v1/me")).status_code == 200
    await Session.filter(id=session_id).update(expires_at=now() - timedelta(seconds=1))
    assert (await client.get("/api/v1/me")).status_code == 401


async def test_logout_everywhere_ends_every_session(client, app):
    import httpx

    await make_user(email="many@example.org")
    other = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver",
                              headers={"origin": "http://testserver"})
    async with other:
        await login(other, "many@example.org")
        await login(client, "many@example.org")
        assert (await other.get("/api/v1/me")).status_code == 200
        await client.post("/account/logout-everywhere", data={"csrf_token": await csrf_token(client)})
        assert (await other.get("/api/v1/me")).status_code == 401
        assert (await client.get("/api/v1/me")).status_code == 401


async def test_csrf_is_required_for_state_changes_from_a_cookie_session(client):
    await make_user(email="csrf@example.org")
    await login(client, "csrf@example.org")
    token = await csrf_token(client)
    body = {"phone": "+44 20 7946 0000"}
    missing = await client.patch("/api/v1/me/profile", json=body)
    assert missing.status_code == 403 and "x-csrf-token" in missing.json()["error"]["message"]
    wrong = await client.patch("/api/v1/me/profile", json=body, headers={"x-csrf-token": "nope"})
    assert wrong.status_code == 403
    foreign = await client.patch("/api/v1/me/profile", json=body,
                                 headers={"x-csrf-token": token, "origin": "https://evil.example"})
    assert foreign.status_code == 403 and "another site" in foreign.json()["error"]["message"]
    form = await client.post("/account", data={"full_name": "Changed", "time_zone": "UTC"})
    assert form.status_code == 403
    assert (await User.get(email="csrf@example.org")).full_name == "Test Person"
    ok = await client.patch("/api/v1/me/profile", json=body, headers={"x-csrf-token": token})
    assert ok.status_code == 200 and ok.json()["phone"] == "+442079460000"  # stored as E.164


async def test_access_tokens_are_stored_hashed_work_and_revoke(client):
    await make_user(email="api@example.org")
    await login(client, "api@example.org")
    created = await client.post("/api/v1/me/tokens", json={"name": "script", "days": 30},
                                headers={"x-csrf-token": await csrf_token(client)})
    assert created.status_code == 201
    secret = created.json()["token"]
    from caretrack.accounts.models import AccessToken

    stored = await AccessToken.get(id=created.json()["id"])
    assert stored.token_hash == digest(secret) and secret not in (stored.token_hash, stored.prefix)
    client.cookies.clear()
    bearer = {"authorization": f"Bearer {secret}"}
    assert (await client.get("/api/v1/me", headers=bearer)).json()["email"] == "api@example.org"
    # a bearer request needs no CSRF token: no cookie is involved
    assert (await client.patch("/api/v1/me/profile", json={"full_name": "Api User"}, headers=bearer)).status_code == 200
    assert (await client.delete(f"/api/v1/me/tokens/{stored.id}", headers=bearer)).status_code == 204
    assert (await client.get("/api/v1/me", headers=bearer)).status_code == 401


async def test_pages_are_role_checked_and_not_cached(client):
    await make_user(email="pat@example.org")
    await login(client, "pat@example.org")
    dashboard = await client.get("/patient")
    assert dashboard.status_code == 200 and dashboard.headers["cache-control"] == "no-store"
    assert (await client.get("/admin")).status_code == 403
    assert (await client.get("/api/v1/admin/users")).status_code == 403
    client.cookies.clear()
    anonymous = await client.get("/patient")
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login?next=/patient"


async def test_login_next_only_goes_to_local_paths(client):
    await make_user(email="next@example.org")
    response = await client.post("/login", data={"email": "next@example.org", "password": PASSWORD,
                                                 "next": "//evil.example/steal"})
    assert response.headers["location"] == "/patient"
    client.cookies.clear()
    response = await client.post("/login", data={"email": "next@example.org", "password": PASSWORD,
                                                 "next": "/account"})
    assert response.headers["location"] == "/account"
