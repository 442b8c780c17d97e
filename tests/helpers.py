"""Small helpers for tests: users, sign-in, CSRF tokens, TOTP codes, links from emails."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pyotp

from caretrack.accounts import passwords
from caretrack.accounts.models import User
from caretrack.core import crypto
from caretrack.core.roles import Role
from caretrack.mail.models import OutboundEmail

PASSWORD = "correct horse battery"


async def make_user(role: Role | str = Role.PATIENT, email: str | None = None, *, password: str = PASSWORD,
                    name: str = "Test Person", totp_secret: str | None = None, **fields) -> User:
    role = Role(role)
    email = email or f"{role.value}-{datetime.now().timestamp()}@example.org"
    extra = {}
    if totp_secret:
        extra = {"totp_secret": crypto.seal(totp_secret, "users.totp_secret"),
                 "totp_enrolled_at": datetime.now(UTC)}
    return await User.create(email=email, full_name=name, role=role, password_hash=passwords.hash_password(password),
                             email_verified_at=datetime.now(UTC), **extra, **fields)


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD, *,
                totp_secret: str | None = None) -> httpx.Response:
    client.cookies.clear()
    response = await client.post("/login", data={"email": email, "password": password})
    if totp_secret and response.status_code == 303 and response.headers["location"] == "/mfa/verify":
        response = await client.post("/mfa/verify", data={"code": pyotp.TOTP(totp_secret).now(),
                                                          "csrf_token": await csrf_token(client, "/mfa/verify")})
    return response


async def csrf_token(client: httpx.AsyncClient, page: str = "/account") -> str:
    html = (await client.get(page)).text
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match, f"no CSRF token on {page}"
    return match.group(1)


async def sign_up(client: httpx.AsyncClient, email: str, *, role: str = "patient", name: str = "Test Person",
                  password: str = PASSWORD) -> httpx.Response:
    """Sign up, confirm the address from the emailed link, and sign in; the sign-in response."""
    response = await client.post("/signup", data={"role": role, "full_name": name, "email": email,
                                                  "password": password})
    assert response.status_code == 200 and "We have sent an email" in response.text, response.text[:500]
    token = fragment_token((await last_email_to(email.lower())).text_body, "/verify-email")
    confirmed = await client.post("/verify-email", data={"token": token})
    assert "Your email address is confirmed" in confirmed.text
    return await login(client, email, password)


def fragment_token(text: str, path: str) -> str:
    match = re.search(re.escape(path) + r"#([A-Za-z0-9_\-]+)", text)
    assert match, f"no {path} link in: {text[:500]}"
    return match.group(1)


async def last_email_to(address: str) -> OutboundEmail:
    email = await OutboundEmail.filter(to_address=address).order_by("-id").first()
    assert email is not None, f"no email to {address}"
    return email
