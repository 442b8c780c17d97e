"""Accounts in a real browser, with emails through a real SMTP server on loopback."""

from __future__ import annotations

import re

import pyotp
import pytest

from caretrack.core.roles import Role
from tests.helpers import PASSWORD, make_user

pytestmark = pytest.mark.browser


@pytest.fixture
def settings(database_url, smtp_server):
    from tests.conftest import base_settings

    return base_settings(database_url=database_url, smtp_host=smtp_server.host, smtp_port=smtp_server.port)


def link_in(message, path: str) -> str:
    text = message.get_body(("plain",)).get_content()
    match = re.search(r"(http://\S+" + re.escape(path) + r"#[A-Za-z0-9_\-]+)", text)
    assert match, text
    return match.group(1)


async def sign_in(page, base: str, email: str, password: str = PASSWORD) -> None:
    await page.goto(base + "/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def test_admin_invites_a_carer_who_sets_a_password_and_signs_in(live_server, browser, smtp_server):
    secret = pyotp.random_base32()
    await make_user(Role.ADMIN, "boss@example.org", totp_secret=secret, name="Bo Boss")
    admin = await (await browser.new_context()).new_page()
    await sign_in(admin, live_server.url, "boss@example.org")
    await admin.wait_for_url("**/mfa/verify")
    await admin.get_by_label(re.compile("Code from your authenticator")).fill(pyotp.TOTP(secret).now())
    await admin.get_by_role("button", name="Continue").click()
    await admin.wait_for_url("**/admin")
    await admin.get_by_role("link", name="Manage users").click()
    await admin.get_by_label("Full name", exact=True).fill("Cara Carer")
    await admin.get_by_label("Email", exact=True).fill("cara@example.org")
    await admin.get_by_label("Role", exact=True).select_option("carer")
    await admin.get_by_role("button", name="Send invitation").click()
    await admin.get_by_text("Invitation sent to cara@example.org").wait_for()

    message = await smtp_server.wait_for("cara@example.org")
    carer = await (await browser.new_context()).new_page()
    await carer.goto(link_in(message, "/invite/accept"))
    assert "#" not in carer.url, "the token leaves the address bar"
    await carer.get_by_label("Password", exact=True).fill("my own long passphrase")
    await carer.get_by_label("Password again").fill("my own long passphrase")
    await carer.get_by_role("button", name="Set password").click()
    await carer.get_by_text("Your account is ready").wait_for()
    await carer.get_by_label("Password").fill("my own long passphrase")
    await carer.get_by_role("button", name="Sign in").click()
    await carer.wait_for_url("**/carer")
    assert await carer.get_by_role("heading", level=1).inner_text() == "Welcome, Cara Carer"
    await admin.context.close()
    await carer.context.close()


async def test_doctor_signs_up_confirms_the_email_signs_in_and_enrols_totp(live_server, page, smtp_server):
    await page.goto(live_server.url + "/signup?as=doctor")
    await page.get_by_label("Full name").fill("Dr Dee")
    await page.get_by_label("Email").fill("dee@example.org")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await page.get_by_text("We have sent an email to dee@example.org").wait_for()
    message = await smtp_server.wait_for("dee@example.org")
    await page.goto(link_in(message, "/verify-email"))
    await page.get_by_text("Your email address is confirmed").wait_for()
    await page.locator("#main").get_by_role("link", name="Sign in").click()
    await page.get_by_label("Email").fill("dee@example.org")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/mfa/setup")
    secret = (await page.locator("#totp-secret").inner_text()).strip()
    await page.get_by_label("6-digit code").fill(pyotp.TOTP(secret).now())
    await page.get_by_role("button", name="Turn on two-factor").click()
    codes = await page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10
    await page.get_by_role("link", name="I have saved them, continue").click()
    await page.wait_for_url("**/doctor")


async def test_patient_resets_a_forgotten_password_through_the_email_link(live_server, page, smtp_server):
    await make_user(Role.PATIENT, "pat@example.org", name="Pat")
    await page.goto(live_server.url + "/login")
    await page.get_by_role("link", name="Forgotten your password?").click()
    await page.get_by_label("Your email address").fill("pat@example.org")
    await page.get_by_role("button", name="Email me a link").click()
    await page.get_by_text("If an account uses that address").wait_for()
    message = await smtp_server.wait_for("pat@example.org")
    await page.goto(link_in(message, "/password/reset"))
    await page.get_by_label("New password", exact=True).fill("a fresh passphrase 9")
    await page.get_by_label("New password again").fill("a fresh passphrase 9")
    await page.get_by_role("button", name="Save password").click()
    await page.get_by_text("Your password is changed").wait_for()
    await sign_in(page, live_server.url, "pat@example.org", "a fresh passphrase 9")
    await page.wait_for_url("**/patient")


async def test_a_throttled_owner_signs_in_through_the_emailed_link(live_server, page, smtp_server):
    from caretrack.accounts.ratelimit import LoginLimiter

    clock = [1_800_000_000.0]
    await live_server.app.state.login_limiter.close()
    live_server.app.state.login_limiter = LoginLimiter(None, clock=lambda: clock[0])
    await make_user(Role.PATIENT, "pat@example.org", name="Pat")
    for _ in range(5):
        await sign_in(page, live_server.url, "pat@example.org", "a wrong guess")
        await page.get_by_text("The email or password is wrong").wait_for()
    await sign_in(page, live_server.url, "pat@example.org")
    await page.get_by_text("we have emailed it a link that signs you in without waiting").wait_for()
    message = await smtp_server.wait_for("pat@example.org")
    await page.goto(link_in(message, "/login/link"))
    await page.wait_for_url("**/patient")
    assert await page.get_by_role("heading", level=1).inner_text() == "Welcome, Pat"
