"""The appointment follows the call: a doctor and a patient meet before the nominal start,
the doctor ends the call, and the patient's appointment page (open beside the call) turns to
"Completed" by itself, with nothing left to cancel or move; a cancel posted anyway is refused."""

from __future__ import annotations

import asyncio

import pyotp
import pytest

from caretrack.booking.models import Appointment, AppointmentStatus
from caretrack.core.roles import Role
from caretrack.payments import ledger
from tests.browser.calls import signed_in_page, wait_for_decoded
from tests.browser.helpers import live_ready
from tests.consultations.conftest import make_appointment
from tests.helpers import make_user

pytestmark = pytest.mark.browser


async def test_a_call_ended_before_its_start_completes_the_appointment(live_server, browser):
    secret = pyotp.random_base32()
    doctor = await make_user(Role.DOCTOR, "doc@example.org", name="Dr Dora", totp_secret=secret)
    patient = await make_user(Role.PATIENT, "pat@example.org", name="Pat Patient")
    appointment = await make_appointment(doctor, patient)  # paid, starts in 5 minutes: the call is open already
    call_url = f"{live_server.url}/consultations/{appointment.id}"
    appointment_url = f"{live_server.url}/appointments/{appointment.id}"

    doctor_page = await signed_in_page(browser, live_server.url, "doc@example.org", secret)
    patient_call = await signed_in_page(browser, live_server.url, "pat@example.org")
    patient_page = await patient_call.context.new_page()
    await patient_page.goto(appointment_url)
    await live_ready(patient_page)
    status = patient_page.locator("#appointment-status")
    assert await status.inner_text() == "Booked"
    assert await patient_page.get_by_role("button", name="Cancel appointment").is_visible()

    await patient_call.goto(call_url)
    await patient_call.get_by_role("button", name="Join the consultation").click()
    await patient_call.get_by_role("heading", name="Waiting room").wait_for()
    await doctor_page.goto(call_url)
    await doctor_page.get_by_role("button", name="Join the consultation").click()
    await doctor_page.get_by_role("button", name="Admit Pat Patient").click()
    await wait_for_decoded(doctor_page, 1)
    await wait_for_decoded(patient_call, 1)

    doctor_page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await doctor_page.get_by_role("button", name="End consultation").click()
    await patient_call.get_by_role("heading", name="The consultation has ended").wait_for()

    # the appointment page beside the call follows by itself, and after a reload says the same
    await patient_page.locator("#appointment-status", has_text="Completed").wait_for(timeout=15000)
    for _ in range(2):
        assert await status.inner_text() == "Completed"
        for name in ("Cancel appointment", "Move appointment"):
            assert await patient_page.get_by_role("button", name=name).count() == 0
        await patient_page.reload()

    # a cancel posted anyway (an old tab's form) is refused and refunds nothing
    token = await patient_page.locator('meta[name="csrf-token"]').get_attribute("content")
    refused = await patient_page.request.post(f"{appointment_url}/cancel", form={"csrf_token": token, "reason": "x"},
                                              headers={"origin": live_server.url})
    assert refused.status == 409
    assert "only a booked one can be cancelled" in await refused.text()
    done = await Appointment.get(id=appointment.id)
    assert done.status == AppointmentStatus.COMPLETED and done.completed_at < done.starts_at
    assert await ledger.balance(ledger.credits(patient.id)) == 0  # no refund
    assert await ledger.balance(ledger.escrow(doctor.id)) == 0
    assert await ledger.balance(ledger.earnings(doctor.id)) == 8  # the fee less the platform's 20%
    await doctor_page.context.close()
    await patient_call.context.close()
