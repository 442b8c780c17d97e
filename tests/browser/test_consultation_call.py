"""Two Chromium pages (fake camera and microphone) hold a consultation through the waiting
room and the relay; each decodes the other's video, and a screen share arrives too."""

from __future__ import annotations

import asyncio
import re
import signal

import pyotp
import pytest

from caretrack.core.roles import Role
from tests.browser.calls import signed_in_page, wait_for_decoded
from tests.consultations.conftest import make_appointment
from tests.helpers import make_user

pytestmark = pytest.mark.browser


async def test_patient_and_doctor_meet_through_the_waiting_room(live_server, browser):
    secret = pyotp.random_base32()
    doctor = await make_user(Role.DOCTOR, "doc@example.org", name="Dr Dora", totp_secret=secret)
    patient = await make_user(Role.PATIENT, "pat@example.org", name="Pat Patient")
    appointment = await make_appointment(doctor, patient)
    call_url = f"{live_server.url}/consultations/{appointment.id}"

    doctor_page = await signed_in_page(browser, live_server.url, "doc@example.org", secret)
    patient_page = await signed_in_page(browser, live_server.url, "pat@example.org")

    # the patient checks their devices, joins and waits
    await patient_page.goto(call_url)
    await patient_page.locator("#preview").evaluate(
        "v => new Promise(r => v.readyState >= 2 ? r() : v.onloadeddata = r)")
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


async def test_the_doctors_notes_guest_link_and_chat_go_through_the_api(live_server, browser):
    """The call page's JSON calls (with the page's CSRF token): notes saved as typed, a guest
    link created, and after a reload the notes and the chat history come back from the API."""
    secret = pyotp.random_base32()
    doctor = await make_user(Role.DOCTOR, "doc@example.org", name="Dr Dora", totp_secret=secret)
    patient = await make_user(Role.PATIENT, "pat@example.org", name="Pat Patient")
    appointment = await make_appointment(doctor, patient)
    call_url = f"{live_server.url}/consultations/{appointment.id}"
    page = await signed_in_page(browser, live_server.url, "doc@example.org", secret)
    notes = page.get_by_role("textbox", name="Consultation notes")

    def notes_loaded(response) -> bool:
        return response.url.endswith("/notes") and response.request.method == "GET"

    await page.goto(call_url)
    # typing before the saved notes have loaded would be overwritten by them: wait for them
    async with page.expect_response(notes_loaded) as loading:
        await page.get_by_role("button", name="Join the consultation").click()
    await (await loading.value).finished()
    await page.wait_for_timeout(250)
    await notes.fill("Knee better; review in a month")
    await page.locator("#notes-status").get_by_text("Saved.", exact=True).wait_for()
    await page.get_by_label("Who is it for?").fill("Interpreter")
    await page.get_by_role("button", name="Create a single-use link").click()
    await page.locator("#guest-link").get_by_text("/consultations/guest").wait_for()
    await page.get_by_label("Message").fill("Notes for the record")
    await page.get_by_role("button", name="Send").click()
    await page.locator("#chat-log").get_by_text("Notes for the record").wait_for()

    await page.reload()
    await page.get_by_role("button", name="Join the consultation").click()
    await page.locator("#chat-log").get_by_text("Notes for the record").wait_for()
    for _ in range(40):
        if await notes.input_value():
            break
        await page.wait_for_timeout(250)
    assert await notes.input_value() == "Knee better; review in a month"
    assert await page.locator("#call-warning").is_hidden()
    await page.context.close()


async def test_a_call_survives_its_media_worker_being_killed(scaled_out, browser):
    """Scaled out: the call runs on a `caretrack media` process behind the web app's
    /ws/signal; when that process is killed, both pages reconnect by themselves to the other
    worker, the patient skips the waiting room, and video flows again."""
    base_url, workers = scaled_out["url"], scaled_out["workers"]
    secret = pyotp.random_base32()
    doctor = await make_user(Role.DOCTOR, "doc@example.org", name="Dr Dora", totp_secret=secret)
    patient = await make_user(Role.PATIENT, "pat@example.org", name="Pat Patient")
    appointment = await make_appointment(doctor, patient)
    call_url = f"{base_url}/consultations/{appointment.id}"
    doctor_page = await signed_in_page(browser, base_url, "doc@example.org", secret)
    patient_page = await signed_in_page(browser, base_url, "pat@example.org")

    await patient_page.goto(call_url)
    # the network check goes through the web process to the worker that will host the call
    await patient_page.locator("#network-verdict").get_by_text(re.compile("^Good: round trip")).wait_for(timeout=20000)
    await patient_page.get_by_role("button", name="Join the consultation").click()
    await patient_page.get_by_role("heading", name="Waiting room").wait_for()
    await doctor_page.goto(call_url)
    await doctor_page.get_by_role("button", name="Join the consultation").click()
    await doctor_page.get_by_role("button", name="Admit Pat Patient").click()
    await wait_for_decoded(doctor_page, 1)
    await wait_for_decoded(patient_page, 1)

    hosting = [w for w in workers.values() if await w.consultations() == 1]
    assert len(hosting) == 1
    (spare,) = [w for w in workers.values() if w is not hosting[0]]
    await hosting[0].stop(signal.SIGKILL)
    for _ in range(120):  # both pages come back on their own, to the surviving worker
        if await spare.consultations() == 1:
            break
        await asyncio.sleep(0.25)
    assert await spare.consultations() == 1
    await wait_for_decoded(doctor_page, 1)
    await wait_for_decoded(patient_page, 1)
    assert await patient_page.get_by_role("heading", name="Waiting room").is_hidden()
    await doctor_page.context.close()
    await patient_page.context.close()
