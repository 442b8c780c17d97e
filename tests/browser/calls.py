"""What the call browser tests share: signed-in pages, the doctor and patient of a call,
bringing them into it through the waiting room, and what each page decodes."""

from __future__ import annotations

import re

import pyotp

from caretrack.core.roles import Role
from tests.consultations.conftest import make_appointment
from tests.helpers import PASSWORD, make_user


async def frames(page) -> list[dict]:
    return await page.evaluate("window.caretrackCall.inboundVideo()")


async def wait_for_decoded(page, tracks: int, timeout_s: float = 30) -> list[dict]:
    for _ in range(int(timeout_s * 4)):
        decoded = [t for t in await frames(page) if t["framesDecoded"] > 5]
        if len(decoded) >= tracks:
            return decoded
        await page.wait_for_timeout(250)
    raise AssertionError(f"only {await frames(page)} decoded on {page.url}")


async def signed_in_page(browser, base_url: str, email: str, totp_secret: str | None = None):
    page = await (await browser.new_context()).new_page()
    await page.goto(base_url + "/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    if totp_secret:
        await page.get_by_label(re.compile("Code from your authenticator")).fill(pyotp.TOTP(totp_secret).now())
        await page.get_by_role("button", name="Continue").click()
    await page.wait_for_url("**/doctor" if totp_secret else "**/patient")
    return page


async def call_people():
    """Dr Dora (with an authenticator) and Pat Patient, and an appointment starting soon:
    (doctor, patient, the doctor's TOTP secret, appointment)."""
    secret = pyotp.random_base32()
    doctor = await make_user(Role.DOCTOR, "doc@example.org", name="Dr Dora", totp_secret=secret)
    patient = await make_user(Role.PATIENT, "pat@example.org", name="Pat Patient")
    return doctor, patient, secret, await make_appointment(doctor, patient)


async def meet(doctor_page, patient_page, call_url: str) -> None:
    """The patient joins and waits, the doctor joins and admits them, and each decodes the other."""
    await patient_page.goto(call_url)
    await patient_page.get_by_role("button", name="Join the consultation").click()
    await patient_page.get_by_role("heading", name="Waiting room").wait_for()
    await doctor_page.goto(call_url)
    await doctor_page.get_by_role("button", name="Join the consultation").click()
    await doctor_page.get_by_role("button", name="Admit Pat Patient").click()
    await wait_for_decoded(doctor_page, 1)
    await wait_for_decoded(patient_page, 1)


async def in_call(browser, base_url: str):
    """Doctor and patient admitted, each decoding the other; (doctor page, patient page, patient)."""
    doctor, patient, secret, appointment = await call_people()
    doctor_page = await signed_in_page(browser, base_url, "doc@example.org", secret)
    patient_page = await signed_in_page(browser, base_url, "pat@example.org")
    await meet(doctor_page, patient_page, f"{base_url}/consultations/{appointment.id}")
    return doctor_page, patient_page, patient
