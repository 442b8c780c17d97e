"""Forms show the server's limits, and a submit with several problems hears all of them at once,
each beside its field, with nothing saved: the doctor's hours and application, sign-up and the
profile; the availability API names every wrong field too."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pyotp

from caretrack.accounts.models import User
from caretrack.booking.models import ApplicationStatus, Availability, DoctorProfile
from caretrack.core.roles import Role
from tests.helpers import csrf_token, login, make_user

AT = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def field_errors(html: str) -> dict[str, str]:
    """{field: message} as the page shows them under the inputs."""
    return dict(re.findall(r'<p class="field-error" id="([^"]+)-error" role="alert">([^<]+)</p>', html))


def flashes(html: str) -> list[str]:
    return re.findall(r'<p class="flash flash-error" role="alert">([^<]+)</p>', html)


async def approved_doctor(client) -> User:
    secret = pyotp.random_base32()
    doctor = await make_user(Role.DOCTOR, "hours@example.org", name="Dr Hours", totp_secret=secret)
    await DoctorProfile.create(user=doctor, status=ApplicationStatus.APPROVED, licence_number="GMC12345",
                               licence_body="General Medical Council", licence_expires_on=date(2030, 1, 1),
                               specialty="General practice", languages="english",
                               biography="A doctor who exists for the tests.", fee_credits=10, submitted_at=AT)
    await login(client, doctor.email, totp_secret=secret)
    return doctor


async def test_the_hours_form_shows_its_limits_and_refuses_every_problem_at_once(app, client):
    app.state.clock = lambda: AT
    doctor = await approved_doctor(client)
    page = (await client.get("/doctor")).text
    assert re.search(r'name="consultation_minutes" type="number" required min="5" max="240"', page)
    assert "Consultation length (minutes) <span class=\"hint\">5 to 240</span>" in page
    assert re.search(r'name="late_cancel_refund_percent" type="number" required min="0" max="100"', page)

    token = await csrf_token(client, "/doctor")
    refused = await client.post("/doctor/availability", data={
        "csrf_token": token, "time_zone": "Mars/Olympus", "start_0": "25:00", "end_0": "10:00",
        "start_1": "11:00", "end_1": "10:00", "start_2": "09:00", "end_2": "12:00",
        "consultation_minutes": "1000", "horizon_days": "soon"})
    assert refused.status_code == 422
    errors = field_errors(refused.text)
    assert errors == {
        "time_zone": "&#39;Mars/Olympus&#39; is not a time zone (for example Europe/London).",
        "start_0": "The Monday start time &#39;25:00&#39; is not a time as HH:MM (00:00 to 24:00).",
        "end_1": "On Tuesday the window 11:00-10:00 ends before it starts.",
        "consultation_minutes": "Consultation minutes must be between 5 and 240.",
        "horizon_days": "Horizon days &#39;soon&#39; is not a whole number.",
    }
    assert flashes(refused.text) == list(errors.values())  # listed once, all of them
    assert 'value="Mars/Olympus"' in refused.text and 'name="start_2" aria-label="Wednesday from" value="09:00"' \
        in refused.text  # what was typed stays
    assert not await Availability.exists(doctor_id=doctor.id)


async def test_the_availability_api_names_every_wrong_field(app, client):
    app.state.clock = lambda: AT
    await approved_doctor(client)
    client.headers["x-csrf-token"] = await csrf_token(client, "/doctor")
    response = await client.post("/api/v1/doctors/me/availability", json={
        "time_zone": "Nowhere", "weekly": [{"weekday": 0, "start": "12:00", "end": "11:00"}],
        "consultation_minutes": 2, "horizon_days": 0})
    assert response.status_code == 422
    fields = {f["field"]: f["message"] for f in response.json()["error"]["fields"]}
    assert set(fields) == {"time_zone", "weekly.0", "consultation_minutes", "horizon_days"}, fields


async def test_the_application_form_refuses_every_problem_at_once(app, client):
    app.state.clock = lambda: AT
    secret = pyotp.random_base32()
    doctor = await make_user(Role.DOCTOR, "apply@example.org", name="Dr Apply", totp_secret=secret)
    await login(client, doctor.email, totp_secret=secret)
    page = (await client.get("/doctor")).text
    assert 'name="biography" rows="4" required minlength="20" maxlength="4000"' in page
    assert 'name="fee_credits" type="number" min="1" max="10000"' in page
    assert 'min="2026-12-02"' in page  # the licence must outlast today (the pinned day)

    token = await csrf_token(client, "/doctor")
    refused = await client.post("/doctor/application", data={
        "csrf_token": token, "licence_number": "x", "licence_body": "General Medical Council",
        "licence_expires_on": "2026-11-30", "specialty": "General practice", "languages": "english, 42",
        "biography": "Too short.", "fee_credits": "lots"},
        files={"document": ("l.pdf", b"%PDF-1.4", "application/pdf")})
    assert refused.status_code == 422
    assert set(field_errors(refused.text)) == {"licence_number", "licence_expires_on", "languages", "biography",
                                               "fee_credits"}
    assert len(flashes(refused.text)) == 5
    assert 'value="General Medical Council"' in refused.text
    assert not await DoctorProfile.exists(user_id=doctor.id)


async def test_sign_up_and_the_profile_list_every_problem(app, client):
    app.state.clock = lambda: AT
    refused = await client.post("/signup", data={"role": "patient", "full_name": " ",
                                                 "email": "not-an-address", "password": "password"})
    assert refused.status_code == 422
    assert {"email", "full_name"} <= set(field_errors(refused.text)), refused.text[:2000]
    assert await User.filter(role=Role.PATIENT).count() == 0

    patient = await make_user(Role.PATIENT, "profile@example.org", name="Pat Profile")
    await login(client, patient.email)
    page = (await client.get("/account")).text
    assert 'name="phone" type="tel" maxlength="40"' in page and 'name="time_zone" required maxlength="64"' in page
    token = await csrf_token(client, "/account")
    refused = await client.post("/account", data={"csrf_token": token, "full_name": "Pat Renamed",
                                                  "time_zone": "Atlantis/Lost", "date_of_birth": "1800-01-01",
                                                  "phone": "", "address": ""})
    assert refused.status_code == 422
    errors = field_errors(refused.text)
    assert set(errors) == {"time_zone", "date_of_birth"}
    assert errors["date_of_birth"] == "The date of birth must be in the past, after 1900."
    assert 'value="Atlantis/Lost"' in refused.text and 'value="Pat Renamed"' in refused.text
    assert (await User.get(id=patient.id)).full_name == "Pat Profile"  # nothing was saved
