"""Two Chromium pages (fake camera and microphone) hold a consultation through the waiting
room and the relay; each decodes the other's video, and a screen share arrives too."""

from __future__ import annotations

import asyncio
import re

import pyotp
import pytest

from caretrack.accounts.models import Role
from tests.consultations.conftest import make_appointment
from tests.helpers import PASSWORD, make_user

pytestmark = pytest.mark.browser


async def frames(page) -> list[dict]:
    return await page.evaluate("window.caretrackCall.inboundVideo()")


async def wait_for_decoded(page, tracks: int, timeout_s: float = 30) -> list[dict]:
    for _ in range(int(timeout_s * 4)):
        decoded = [t for t in await frames(page) if t["framesDecoded"] > 5]
        if len(decoded) >= tracks:
            return decoded
        await page.wait_for_timeout(250)
    raise AssertionError(f"only {await frames(page)} decoded on {page.url}")


async def test_patient_and_doctor_meet_through_the_waiting_room(live_server, browser):
    secret = pyotp.random_base32()
    doctor = await make_user(Role.DOCTOR, "doc@example.org", name="Dr Dora", totp_secret=secret)
    patient = await make_user(Role.PATIENT, "pat@example.org", name="Pat Patient")
    appointment = await make_appointment(doctor, patient)
    call_url = f"{live_server.url}/consultations/{appointment.id}"

    doctor_page = await (await browser.new_context()).new_page()
    await doctor_page.goto(live_server.url + "/login")
    await doctor_page.get_by_label("Email").fill("doc@example.org")
    await doctor_page.get_by_label("Password").fill(PASSWORD)
    await doctor_page.get_by_role("button", name="Sign in").click()
    await doctor_page.get_by_label(re.compile("Code from your authenticator")).fill(pyotp.TOTP(secret).now())
    await doctor_page.get_by_role("button", name="Continue").click()
    await doctor_page.wait_for_url("**/doctor")

    patient_page = await (await browser.new_context()).new_page()
    await patient_page.goto(live_server.url + "/login")
    await patient_page.get_by_label("Email").fill("pat@example.org")
    await patient_page.get_by_label("Password").fill(PASSWORD)
    await patient_page.get_by_role("button", name="Sign in").click()
    await patient_page.wait_for_url("**/patient")

    # the patient checks their devices, joins and waits
    await patient_page.goto(call_url)
    await patient_page.locator("#preview").evaluate("v => new Promise(r => v.readyState >= 2 ? r() : v.onloadeddata = r)")
    assert await patient_page.get_by_label("Camera").locator("option").count() >= 1
    await patient_page.get_by_role("button", name="Join the consultation").click()
    await patient_page.get_by_role("heading", name="Waiting room").wait_for()

    # the doctor joins and sees, live, who is waiting
    await doctor_page.goto(call_url)
    await doctor_page.get_by_role("button", name="Join the consultation").click()
    await doctor_page.get_by_role("button", name="Admit Pat Patient").click()

    doctor_sees = await wait_for_decoded(doctor_page, 1)
    patient_sees = await wait_for_decoded(patient_page, 1)
    assert doctor_sees and patient_sees

    # chat reaches the other side
    await patient_page.get_by_label("Message").fill("Hello doctor")
    await patient_page.get_by_role("button", name="Send").click()
    await doctor_page.locator("#chat-log").get_by_text("Hello doctor").wait_for()

    # screen share: a second video the doctor decodes
    await patient_page.get_by_role("button", name="Share screen").click()
    shared = await wait_for_decoded(doctor_page, 2)
    assert len(shared) >= 2

    doctor_page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await doctor_page.get_by_role("button", name="End consultation").click()
    await patient_page.get_by_role("heading", name="The consultation has ended").wait_for()
    await doctor_page.context.close()
    await patient_page.context.close()
