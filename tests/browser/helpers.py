"""What browser tests share: signing in (with the second factor when a secret is given) and
waiting for a page's live connection."""

from __future__ import annotations

import re

import pyotp

from tests.helpers import PASSWORD


async def sign_in_page(page, base: str, email: str, secret: str | None = None) -> None:
    await page.goto(base + "/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    if secret:
        await page.wait_for_url("**/mfa/verify")
        await page.get_by_label(re.compile("Code from your authenticator")).fill(pyotp.TOTP(secret).now())
        await page.get_by_role("button", name="Continue").click()


async def sign_in(browser, base: str, email: str, secret: str | None = None):
    """A new browser context, signed in as `email`; its page."""
    page = await (await browser.new_context()).new_page()
    await sign_in_page(page, base, email, secret)
    return page


async def live_ready(page) -> None:
    """Until the page's live connection is up. A selector, not wait_for_function: that polls
    with eval, which the pages' CSP (script-src 'self') refuses right after a navigation."""
    await page.locator("html[data-live='online']").wait_for(state="attached", timeout=10000)
