"""After the visit, in Chromium: the doctor writes the visit summary and offers a follow-up
from the call page; the patient, still in the call, is told of both as they happen, reads
the summary on the appointment page and books the follow-up in one step with credits."""

from __future__ import annotations

from datetime import UTC, datetime

import pyotp
import pytest

from caretrack.accounts import passwords
from caretrack.accounts.models import User
from caretrack.booking.models import Appointment, AppointmentStatus
from caretrack.core import crypto
from caretrack.payments import service as payments
from tests.booking.conftest import give, make_doctor
from tests.browser.helpers import live_ready, sign_in
from tests.consultations.conftest import make_appointment
from tests.helpers import PASSWORD, make_user

pytestmark = pytest.mark.browser
SUMMARY = "Your knee is sprained, not torn.\nRest it for a week and come back if it still hurts."


async def test_the_doctor_writes_the_summary_and_offers_a_follow_up_from_the_call(live_server, browser):
    secret = pyotp.random_base32()
    doctor = await make_doctor("Dr Dora", fee=10, licence_days=3650)
    await User.filter(id=doctor.id).update(
        email="doc@example.org", password_hash=passwords.hash_password(PASSWORD), email_verified_at=datetime.now(UTC),
        totp_secret=crypto.seal(secret, "users.totp_secret"), totp_enrolled_at=datetime.now(UTC))
    patient = await make_user(name="Pat Patient", email="pat@example.org")
    await give(patient, 25)
    appointment = await make_appointment(doctor, patient)
    call_url = f"{live_server.url}/consultations/{appointment.id}"

    patient_page = await sign_in(browser, live_server.url, "pat@example.org")
    await patient_page.goto(call_url)
    await live_ready(patient_page)
    await patient_page.get_by_role("button", name="Join the consultation").click()
    await patient_page.get_by_role("heading", name="Waiting room").wait_for()

    # the patient also has the appointment page open, in another tab
    summary_page = await patient_page.context.new_page()
    await summary_page.goto(f"{live_server.url}/appointments/{appointment.id}")
    await live_ready(summary_page)
    await summary_page.get_by_text("Your doctor has not published a summary of this consultation yet").wait_for()

    doctor_page = await sign_in(browser, live_server.url, "doc@example.org", secret)
    await doctor_page.goto(call_url)
    assert await doctor_page.get_by_role("region", name="After the visit").is_hidden(), "shown once in the call"
    await doctor_page.get_by_role("button", name="Join the consultation").click()
    await doctor_page.get_by_role("button", name="Admit Pat Patient").click()

    summary_box = doctor_page.get_by_label("Summary for the patient")
    await summary_box.wait_for()
    await doctor_page.locator("#summary-status").get_by_text("Not written yet.").wait_for()
    await summary_box.fill(SUMMARY)
    await doctor_page.get_by_role("button", name="Save draft").click()
    await doctor_page.locator("#summary-status").get_by_text("the patient does not see it yet").wait_for()
    await doctor_page.get_by_role("button", name="Publish to the patient").click()
    await doctor_page.locator("#summary-status").get_by_text("The patient can read it").wait_for()

    slot = doctor_page.get_by_label("One of your free times")
    await slot.locator("option").first.wait_for(state="attached")
    first_label = await slot.locator("option").first.text_content()
    await doctor_page.get_by_role("button", name="Offer this time").click()
    await doctor_page.locator("#follow-up-status").get_by_text("The patient has been told.").wait_for()

    # the patient, in the call, hears of both as they happen
    notices = patient_page.get_by_role("region", name="From your doctor")
    await notices.get_by_text("Your doctor has published a summary of this visit.").wait_for()
    await notices.get_by_text(f"Your doctor offers a follow-up: {first_label}").wait_for()
    assert await patient_page.get_by_role("heading", name="Waiting room").is_hidden()

    # the open appointment page shows the summary as written, without a reload
    await summary_page.locator("#visit-summary-text").wait_for()
    assert await summary_page.locator("#visit-summary-text").inner_text() == SUMMARY
    await summary_page.reload()
    assert await summary_page.locator("#visit-summary-text").inner_text() == SUMMARY
    await summary_page.locator("#visit-summary-dates").get_by_text("Written by your doctor, published").wait_for()

    # and the follow-up is booked in one step, paid in credits
    async with patient_page.context.expect_page() as opened:
        await notices.get_by_role("link", name="Book it (10 credits)").click()
    offer_page = await opened.value
    await offer_page.get_by_role("button", name="Pay 10 credits and book").click()
    await offer_page.wait_for_url("**/appointments/*")
    booked = await Appointment.get(id=int(offer_page.url.rsplit("/", 1)[1]))
    assert (booked.status, booked.doctor_id, booked.patient_id) == (AppointmentStatus.BOOKED, doctor.id, patient.id)
    assert await payments.balance_of(patient) == 15
    assert await offer_page.locator("#appointment-status").inner_text() == "Booked"
    await doctor_page.context.close()
    await patient_page.context.close()
