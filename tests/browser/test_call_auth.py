"""A deactivated patient's call ends: the admin deactivates the patient in the middle of a
consultation, the patient's page says why within 5 s, and the doctor's page stops receiving
the patient's media (the relay dropped it)."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from caretrack.accounts.service.admin import do_set_active
from caretrack.core.roles import Role
from tests.browser.calls import call_people, meet, signed_in_page
from tests.helpers import make_user

pytestmark = pytest.mark.browser

# The directions of the doctor's receivers of the patient's media ({mid: currentDirection}).
PATIENT_RECEIVERS = """patient => {
  const { state } = window.caretrackCall;
  const out = {};
  for (const t of state.pc ? state.pc.getTransceivers() : []) {
    if (t.mid !== null && state.tracksByMid.get(t.mid)?.participant === patient) out[t.mid] = t.currentDirection;
  }
  return out;
}"""


async def test_a_deactivated_patients_call_ends_within_5_seconds(live_server, browser):
    doctor, patient, secret, appointment = await call_people()
    admin = await make_user(Role.ADMIN, "ada@example.org", name="Ada Admin")
    call_url = f"{live_server.url}/consultations/{appointment.id}"
    doctor_page = await signed_in_page(browser, live_server.url, "doc@example.org", secret)
    patient_page = await signed_in_page(browser, live_server.url, "pat@example.org")
    await meet(doctor_page, patient_page, call_url)
    receiving = await doctor_page.evaluate(PATIENT_RECEIVERS, str(patient.id))
    assert receiving and set(receiving.values()) <= {"recvonly", "sendrecv"}, receiving

    await do_set_active(admin, patient.id, False, None)

    ended = patient_page.get_by_role("heading", name="The consultation has ended")
    await ended.wait_for(timeout=5000)
    assert await patient_page.locator("#ended-text").inner_text() == "Your account was deactivated."
    assert await patient_page.locator("#stage").is_hidden()
    assert await patient_page.locator("#call-warning").is_hidden()  # said once, on the end screen
    # the doctor's page no longer receives the patient: the relay took their tracks away
    # (their transceivers go inactive, and the page forgets them with the patient's tile)
    await expect(doctor_page.locator(f'#videos .tile[data-participant="{patient.id}"]')).to_have_count(0)
    receiving = await doctor_page.evaluate(PATIENT_RECEIVERS, str(patient.id))
    assert set(receiving.values()) <= {"inactive", "stopped"}, receiving
    # ... and stays in the call: their own socket is untouched
    assert await doctor_page.locator("#stage").is_visible()
    # reloading does not bring the patient back: they are signed out
    await patient_page.reload()
    assert "/login" in patient_page.url
    await doctor_page.context.close()
    await patient_page.context.close()
