"""In Chromium (fake camera and microphone): the patient completes the intake on the call
page's pre-join step, then joins; the doctor, already in the call, sees the answers and the
signature appear in the call's intake panel, admits the patient, and sees their video."""

from __future__ import annotations

import pyotp
import pytest

from caretrack.booking.models import Appointment
from caretrack.core.roles import Role
from caretrack.intake import service as intake
from caretrack.intake.schemas import ConsentIn, QuestionIn, TypeIn
from tests.browser.calls import signed_in_page, wait_for_decoded
from tests.consultations.conftest import make_appointment
from tests.helpers import make_user

pytestmark = pytest.mark.browser


async def test_the_patient_completes_the_intake_then_joins_and_the_doctor_reads_it_in_the_call(live_server, browser):
    secret = pyotp.random_base32()
    doctor = await make_user(Role.DOCTOR, "doc@example.org", name="Dr Dora", totp_secret=secret)
    patient = await make_user(Role.PATIENT, "pat@example.org", name="Pat Patient")
    kind = await intake.do_create_type(doctor, TypeIn(name="First visit"))
    await intake.do_add_question(doctor, kind.id, QuestionIn(kind="long_text", prompt="What brings you here?"))
    await intake.do_add_question(doctor, kind.id, QuestionIn(kind="yes_no", prompt="Any allergies?"))
    await intake.do_add_consent(doctor, kind.id, ConsentIn(title="Video consultation",
                                                           text="I agree to be seen by video."))
    appointment = await make_appointment(doctor, patient)
    await Appointment.filter(id=appointment.id).update(consultation_type_id=kind.id)
    call_url = f"{live_server.url}/consultations/{appointment.id}"

    doctor_page = await signed_in_page(browser, live_server.url, "doc@example.org", secret)
    await doctor_page.goto(call_url)
    await doctor_page.get_by_role("button", name="Join the consultation").click()
    panel = doctor_page.locator("#intake-panel")
    await panel.get_by_text("The patient has not completed the intake yet.").wait_for()

    patient_page = await signed_in_page(browser, live_server.url, "pat@example.org")
    await patient_page.goto(call_url)
    join = patient_page.get_by_role("button", name="Join the consultation")
    assert not await join.is_visible()  # the form stands where Join would be
    await patient_page.get_by_label("What brings you here?").fill("My knee hurts when I climb stairs")
    await patient_page.get_by_label("No").check()
    await patient_page.get_by_role("button", name="Save and sign").click()
    # Nothing ticked or signed: the browser's own check keeps the form; then the server's.
    await patient_page.get_by_label("I have read and agree to “Video consultation”").check()
    await patient_page.get_by_label("Type your full name to sign").fill("Pat Patient")
    await patient_page.get_by_role("button", name="Save and sign").click()
    await join.wait_for()
    assert await patient_page.locator("#intake-form").count() == 0

    # The doctor's panel follows, live.
    await panel.get_by_text("My knee hurts when I climb stairs").wait_for()
    assert "Any allergies?" in await panel.inner_text()
    assert "“Video consultation” version 1 — signed “Pat Patient”" in await panel.inner_text()

    await join.click()
    await patient_page.get_by_role("heading", name="Waiting room").wait_for()
    await doctor_page.get_by_role("button", name="Admit Pat Patient").click()
    assert await wait_for_decoded(doctor_page, 1)
    await doctor_page.context.close()
    await patient_page.context.close()
