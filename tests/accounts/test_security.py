"""Second factor, password reset, invitations over real SMTP, administration, ownership,
PHI encryption and the audit chain."""

from __future__ import annotations

import pyotp
import pytest
from tortoise import connections

from caretrack.accounts.models import RecoveryCode, Session
from caretrack.accounts.sessions import digest
from caretrack.core import crypto
from caretrack.core.audit.models import AuditEntry
from caretrack.core.audit.service import verify_chain
from caretrack.core.roles import Role
from tests.helpers import PASSWORD, csrf_token, fragment_token, last_email_to, login, make_user, sign_up


async def test_doctor_must_enrol_totp_before_anything_else_and_each_code_works_once(client):
    response = await sign_up(client, "who@example.org", role="doctor", name="Dr Who")
    assert response.headers["location"] == "/mfa/setup"
    blocked = await client.get("/doctor")
    assert blocked.status_code == 303 and blocked.headers["location"] == "/mfa/setup"
    assert (await client.get("/api/v1/me")).json()["error"]["code"] == "mfa_required"

    setup = await client.get("/mfa/setup")
    import re

    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', setup.text).group(1)
    wrong = await client.post("/mfa/setup",
                              data={"code": "000000", "csrf_token": await csrf_token(client, "/mfa/setup")})
    assert wrong.status_code == 422
    code = pyotp.TOTP(secret).now()
    enrolled = await client.post("/mfa/setup",
                                 data={"code": code, "csrf_token": await csrf_token(client, "/mfa/setup")})
    assert enrolled.status_code == 200
    codes = re.findall(r"<li>([0-9a-f]{8}-[0-9a-f]{8})</li>", enrolled.text)
    assert len(codes) == 10
    stored = await RecoveryCode.filter(user__email="who@example.org").values_list("code_hash", flat=True)
    assert all(c not in stored for c in codes), "recovery codes are stored hashed"
    assert (await client.get("/doctor")).status_code == 200

    # next sign-in: the code just used is refused, a recovery code works once
    await login(client, "who@example.org")
    token = await csrf_token(client, "/mfa/verify")
    assert (await client.post("/mfa/verify", data={"code": code, "csrf_token": token})).status_code == 422
    assert (await client.post("/mfa/verify", data={"code": codes[0], "csrf_token": token})).status_code == 303
    assert (await client.get("/doctor")).status_code == 200
    await login(client, "who@example.org")
    token = await csrf_token(client, "/mfa/verify")
    assert (await client.post("/mfa/verify", data={"code": codes[0], "csrf_token": token})).status_code == 422


async def test_password_reset_by_email_ends_sessions_and_never_skips_the_second_factor(client):
    secret = pyotp.random_base32()
    await make_user(Role.ADMIN, "boss@example.org", totp_secret=secret)
    await login(client, "boss@example.org", totp_secret=secret)
    old_cookie = client.cookies["caretrack_session"]
    client.cookies.clear()
    sent = await client.post("/password/forgot", data={"email": "boss@example.org"})
    assert "If an account uses that address" in sent.text
    unknown = await client.post("/password/forgot", data={"email": "nobody@example.org"})
    assert unknown.text.count("If an account uses that address") == 1  # same answer: no account discovery

    token = fragment_token((await last_email_to("boss@example.org")).text_body, "/password/reset")
    weak = await client.post("/password/reset", data={"token": token, "password": "short", "password_again": "short"})
    assert weak.status_code == 422  # and the token is still good: nothing half-written
    done = await client.post("/password/reset", data={"token": token, "password": "a brand new passphrase",
                                                       "password_again": "a brand new passphrase"})
    assert done.status_code == 200 and "Sign in with it now" in done.text
    assert "caretrack_session" not in client.cookies
    assert (await Session.get(id=digest(old_cookie))).revoked_at is not None
    again = await client.post("/password/reset", data={"token": token, "password": "another passphrase 2",
                                                        "password_again": "another passphrase 2"})
    assert again.status_code == 422

    signed_in = await login(client, "boss@example.org", "a brand new passphrase")
    assert signed_in.headers["location"] == "/mfa/verify"
    assert (await client.get("/admin")).headers["location"] == "/mfa/verify"


async def test_invitation_arrives_over_smtp_and_its_link_works_once(settings, smtp_server):
    import httpx
    from asgi_lifespan import LifespanManager

    from caretrack.site.app import create_app

    app = create_app(settings.replace(smtp_host=smtp_server.host, smtp_port=smtp_server.port))
    async with LifespanManager(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver",
                                     headers={"origin": "http://testserver"}) as client:
            secret = pyotp.random_base32()
            await make_user(Role.ADMIN, "boss@example.org", totp_secret=secret, name="Bo Boss")
            await login(client, "boss@example.org", totp_secret=secret)
            invited = await client.post("/api/v1/admin/invitations",
                                        json={"email": "cara@example.org", "full_name": "Cara Carer", "role": "carer"},
                                        headers={"x-csrf-token": await csrf_token(client)})
            assert invited.status_code == 201 and invited.json()["role"] == "carer"
            message = await smtp_server.wait_for("cara@example.org")
            assert "invited" in message["Subject"]
            text = message.get_body(("plain",)).get_content()
            assert "Bo Boss has invited you" in text
            token = fragment_token(text, "/invite/accept")
            client.cookies.clear()
            accepted = await client.post("/invite/accept", data={"token": token, "password": PASSWORD,
                                                                  "password_again": PASSWORD})
            assert accepted.status_code == 200
            assert (await login(client, "cara@example.org")).headers["location"] == "/carer"
            client.cookies.clear()
            reused = await client.post("/invite/accept", data={"token": token, "password": "other pass phrase",
                                                                "password_again": "other pass phrase"})
            assert reused.status_code == 422
            duplicate = await client.post("/signup", data={"email": "cara@example.org", "full_name": "x",
                                                            "password": PASSWORD})
            assert duplicate.status_code == 200 and "We have sent an email" in duplicate.text
            assert "already have one" in (await last_email_to("cara@example.org")).text_body


async def test_admin_manages_users(client):
    secret = pyotp.random_base32()
    await make_user(Role.ADMIN, "boss@example.org", totp_secret=secret)
    target = await make_user(Role.PATIENT, "target@example.org", name="Tara Target")
    await make_user(Role.CARER, "other@example.org", name="Otto Other")
    await login(client, "boss@example.org", totp_secret=secret)
    csrf = {"x-csrf-token": await csrf_token(client)}

    found = (await client.get("/api/v1/admin/users", params={"q": "tara"})).json()
    assert [u["email"] for u in found["users"]] == ["target@example.org"] and found["total"] == 1
    carers = (await client.get("/api/v1/admin/users", params={"role": "carer"})).json()
    assert [u["email"] for u in carers["users"]] == ["other@example.org"]
    assert (await client.get("/api/v1/admin/users", params={"role": "wizard"})).status_code == 422

    changed = await client.patch(f"/api/v1/admin/users/{target.id}", json={"role": "carer"}, headers=csrf)
    assert changed.json()["role"] == "carer"
    assert await AuditEntry.filter(action="user.role_changed", subject_id=str(target.id)).count() == 1
    off = await client.patch(f"/api/v1/admin/users/{target.id}", json={"is_active": False}, headers=csrf)
    assert off.json()["is_active"] is False
    missing = await client.patch("/api/v1/admin/users/999999", json={"is_active": False}, headers=csrf)
    assert missing.status_code == 404 and "999999" in missing.json()["error"]["message"]
    assert (await login(client, "target@example.org")).status_code == 401


async def test_admin_resets_two_factor(client):
    secret = pyotp.random_base32()
    await make_user(Role.ADMIN, "boss@example.org", totp_secret=secret)
    doctor = await make_user(Role.DOCTOR, "doc@example.org", totp_secret=pyotp.random_base32())
    await login(client, "boss@example.org", totp_secret=secret)
    reset = await client.post(f"/api/v1/admin/users/{doctor.id}/reset-mfa",
                              headers={"x-csrf-token": await csrf_token(client)})
    assert reset.status_code == 200 and reset.json()["mfa_enrolled"] is False
    assert (await login(client, "doc@example.org")).headers["location"] == "/mfa/setup"


async def test_a_patient_cannot_read_another_patients_profile(client):
    alice = await make_user(Role.PATIENT, "alice@example.org")
    bob = await make_user(Role.PATIENT, "bob@example.org")
    await login(client, "alice@example.org")
    assert (await client.get(f"/api/v1/users/{alice.id}/profile")).status_code == 200
    other = await client.get(f"/api/v1/users/{bob.id}/profile")
    assert other.status_code == 404
    assert (await client.get("/api/v1/users/987654/profile")).status_code == 404
    assert other.json() == (await client.get("/api/v1/users/987654/profile")).json() | {
        "error": {"code": "not_found", "message": f"No profile with id {bob.id}."}}


async def test_phi_is_ciphertext_in_the_database_and_every_access_is_audited(client):
    user = await make_user(Role.PATIENT, "phi@example.org")
    await login(client, "phi@example.org")
    saved = await client.patch("/api/v1/me/profile", json={"phone": "+44 7911 123456", "address": "1 High St",
                                                           "date_of_birth": "1980-02-29"},
                               headers={"x-csrf-token": await csrf_token(client)})
    assert saved.status_code == 200 and saved.json()["address"] == "1 High St"
    conn = connections.get("default")
    _, rows = await conn.execute_query("SELECT phone, address, date_of_birth FROM users WHERE id = " + str(user.id))
    raw = dict(rows[0])
    for column, plain in (("phone", "+44 7911 123456"), ("address", "1 High St"), ("date_of_birth", "1980-02-29")):
        assert raw[column].startswith("v1.") and plain not in raw[column]
    assert await AuditEntry.filter(action="phi.write", subject_id=str(user.id)).count() == 1
    assert await AuditEntry.filter(action="phi.read", subject_id=str(user.id)).count() >= 1
    bad = await client.patch("/api/v1/me/profile", json={"date_of_birth": "2999-01-01"},
                             headers={"x-csrf-token": await csrf_token(client)})
    assert bad.status_code == 422 and "date of birth" in bad.json()["error"]["message"]


async def test_key_rotation_keeps_old_ciphertext_readable(settings):
    old_key, new_key = b"\x01" * 32, b"\x02" * 32
    crypto.configure({1: old_key})
    sealed = crypto.seal("07700 900123", "users.phone")
    crypto.configure({1: old_key, 2: new_key})
    assert crypto.unseal(sealed, "users.phone") == "07700 900123"
    fresh = crypto.seal("07700 900123", "users.phone")
    assert fresh.startswith("v2.") and crypto.cipher().version_of(sealed) == 1
    with pytest.raises(crypto.DecryptionError):
        crypto.unseal(sealed, "users.address")  # bound to its column
    crypto.configure({2: new_key})
    with pytest.raises(crypto.DecryptionError, match="version v1 is not configured"):
        crypto.unseal(sealed, "users.phone")
    crypto.configure(settings.phi_keys)


async def test_audit_log_refuses_edits_and_verify_finds_the_edited_row(client, settings):
    await make_user(email="a@example.org")
    for _ in range(3):
        await login(client, "a@example.org")
    assert (await verify_chain()).ok
    entries = await AuditEntry.all().order_by("seq")
    assert len(entries) >= 3
    with pytest.raises(Exception, match="append-only"):
        await AuditEntry.filter(id=entries[1].id).update(action="tampered")
    # someone with direct database access bypasses the trigger:
    conn = connections.get("default")
    if settings.is_sqlite:
        await conn.execute_script("DROP TRIGGER audit_log_no_update")
    else:
        await conn.execute_script("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update")
    await conn.execute_query(f"UPDATE audit_log SET client_address = '203.0.113.9' WHERE id = {entries[1].id}")
    result = await verify_chain()
    assert not result.ok and result.broken_at == entries[1].seq
    assert f"broken at row {entries[1].seq}" in result.message()
    if not settings.is_sqlite:
        await conn.execute_script("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update")


async def test_audit_verify_command_reports_the_broken_row(tmp_path):
    import asyncio
    import os
    import sqlite3
    import sys

    env = {**os.environ, "CARETRACK_DATABASE_URL": f"sqlite://{tmp_path}/a.sqlite3", "CARETRACK_ENVIRONMENT": "test"}

    async def cli(*args):
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "caretrack", *args, env=env,
                                                       stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await process.communicate()
        return process.returncode, out.decode() + err.decode()

    assert (await cli("migrate"))[0] == 0
    assert (await cli("demo"))[0] == 0
    code, out = await cli("audit", "verify")
    import re

    rows = int(re.search(r"audit log intact: (\d+) row\(s\) verified", out).group(1))
    assert code == 0 and rows >= 4  # at least one row per demo account
    db = sqlite3.connect(tmp_path / "a.sqlite3")
    db.execute("DROP TRIGGER audit_log_no_update")
    db.execute("UPDATE audit_log SET detail = '{}' WHERE seq = 3")
    db.commit()
    db.close()
    code, out = await cli("audit", "verify")
    assert code == 1 and "audit log broken at row 3" in out


async def test_demo_is_idempotent_and_createadmin_works(tmp_path):
    import asyncio
    import os
    import sys

    env = {**os.environ, "CARETRACK_DATABASE_URL": f"sqlite://{tmp_path}/d.sqlite3", "CARETRACK_ENVIRONMENT": "test",
           "CARETRACK_ADMIN_PASSWORD": "a fine admin passphrase"}

    async def cli(*args):
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "caretrack", *args, env=env,
                                                       stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await process.communicate()
        return process.returncode, out.decode() + err.decode()

    await cli("migrate")
    first = await cli("demo")
    second = await cli("demo")
    assert first[0] == second[0] == 0 and first[1] == second[1]
    for role in ("admin", "doctor", "carer", "patient"):
        assert f"{role}@caretrack.example" in first[1]
    code, out = await cli("createadmin", "--email", "root@example.org", "--name", "Root")
    assert code == 0 and "created admin root@example.org" in out
    code, out = await cli("createadmin", "--email", "root@example.org")
    assert code == 1 and "already exists" in out
    weak = {**env, "CARETRACK_ADMIN_PASSWORD": "password"}
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "caretrack", "createadmin", "--email",
                                                   "x@example.org", env=weak, stderr=asyncio.subprocess.PIPE)
    _, err = await process.communicate()
    assert process.returncode == 1 and b"most common passwords" in err
