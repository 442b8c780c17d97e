"""A patient's intake before the visit, on SQLite and PostgreSQL: booking a doctor's type, the
call's door (page and signalling) shut until the questionnaire is answered and the consent
signed, sealed at rest, audited, read by the doctor only (and the patient), and a signature
that keeps its consent version."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from tortoise import connections

from caretrack.accounts import passwords
from caretrack.accounts.models import User
from caretrack.booking.models import Appointment
from caretrack.consultations import guests
from caretrack.consultations import service as consultations
from caretrack.consultations.schemas import GuestInviteCreate
from caretrack.core import crypto
from caretrack.core.audit.models import AuditEntry
from caretrack.core.outbox.models import Event
from caretrack.core.roles import Role
from caretrack.intake import answers
from caretrack.intake import service as intake
from caretrack.intake.schemas import ConsentIn, IntakeSubmission, QuestionIn, TypeIn
from signalling import Principal
from signalling.gate import Closing, seat_for, seat_to_join
from tests.booking.conftest import give, make_doctor, next_hour
from tests.consultations.conftest import make_appointment
from tests.helpers import PASSWORD, csrf_token, login, make_user


async def with_login(user: User, *, totp: bool) -> str | None:
    """Give a fixture user a password (and a second factor); the TOTP secret."""
    secret = pyotp.random_base32() if totp else None
    await User.filter(id=user.id).update(
        password_hash=passwords.hash_password(PASSWORD), email_verified_at=datetime.now(UTC),
        totp_secret=crypto.seal(secret, "users.totp_secret"), totp_enrolled_at=datetime.now(UTC) if totp else None)
    return secret


async def sign_in(client, user: User, secret: str | None = None) -> None:
    client.headers.pop("x-csrf-token", None)
    await login(client, user.email, totp_secret=secret)
    client.headers["x-csrf-token"] = await csrf_token(client, "/account")


async def first_visit(doctor: User):
    """A type with a text, a yes/no and an optional choice question, and one consent document."""
    kind = await intake.do_create_type(doctor, TypeIn(name="First visit"))
    reason = await intake.do_add_question(doctor, kind.id, QuestionIn(kind="short_text", prompt="Why are you coming?",
                                                                      max_length=50))
    allergy = await intake.do_add_question(doctor, kind.id, QuestionIn(kind="yes_no", prompt="Any allergies?"))
    pain = await intake.do_add_question(doctor, kind.id, QuestionIn(kind="choice", prompt="Pain level",
                                                                    choices=["none", "some"], required=False))
    consent = await intake.do_add_consent(doctor, kind.id, ConsentIn(title="Video consultation",
                                                                     text="I agree to be seen by video."))
    return kind, reason, allergy, pain, consent


async def test_booking_a_doctor_with_types_needs_one_of_theirs(client):
    doctor = await make_doctor("Dr Ada")
    other = await make_doctor("Dr Bea")
    kind, *_ = await first_visit(doctor)
    foreign, *_ = await first_visit(other)
    patient = await make_user(Role.PATIENT, "pat@example.org", name="Pat Patient")
    await give(patient, 50)
    await sign_in(client, patient)
    body = {"doctor_id": doctor.id, "starts_at": next_hour(48).isoformat()}
    assert (await client.post("/api/v1/holds", json=body)).status_code == 201  # the type may come later
    unnamed = await client.post("/api/v1/bookings", json=body)
    assert unnamed.status_code == 422 and "Choose the type of consultation: 'First visit'" in unnamed.text
    assert unnamed.json()["error"]["fields"][0]["field"] == "consultation_type_id"
    wrong = await client.post("/api/v1/bookings", json={**body, "consultation_type_id": foreign.id})
    assert wrong.status_code == 422 and f"type {foreign.id} is not one this doctor offers" in wrong.text
    booked = await client.post("/api/v1/bookings", json={**body, "consultation_type_id": kind.id})
    assert booked.status_code == 201, booked.text
    assert booked.json()["consultation_type_id"] == kind.id
    assert (await Appointment.get(id=booked.json()["id"])).consultation_type_id == kind.id

    # The page: the doctor's page names the types, the hold page asks for one.
    page = await client.get(f"/doctors/{doctor.id}")
    assert "Types of consultation" in page.text and "First visit" in page.text
    later = next_hour(72).isoformat()
    held = await client.post("/holds", data={"csrf_token": client.headers["x-csrf-token"], "doctor_id": doctor.id,
                                             "starts_at": later})
    assert held.status_code == 303
    hold_page = await client.get(held.headers["location"])
    assert 'name="consultation_type_id"' in hold_page.text
    hold_id = int(held.headers["location"].rsplit("/", 1)[1])
    token = client.headers["x-csrf-token"]
    refused = await client.post(f"/appointments/{hold_id}/book", data={"csrf_token": token})
    assert refused.status_code == 422 and "Choose the type of consultation" in refused.text
    done = await client.post(f"/appointments/{hold_id}/book", data={"csrf_token": token,
                                                                     "consultation_type_id": str(kind.id)})
    assert done.status_code == 303
    page = await client.get(f"/appointments/{hold_id}")
    assert 'id="intake-form"' in page.text and "Why are you coming?" in page.text  # asked on the appointment page


async def test_the_patient_cannot_join_until_the_intake_is_done_and_only_doctor_and_patient_read_it(client, settings):
    doctor = await make_user(Role.DOCTOR, "dr@example.org", name="Dr Dora")
    doctor_secret = await with_login(doctor, totp=True)
    patient = await make_user(Role.PATIENT, "pat@example.org", name="Pat Patient")
    kind, reason, allergy, pain, consent = await first_visit(doctor)
    appointment = await make_appointment(doctor, patient)
    await Appointment.filter(id=appointment.id).update(consultation_type_id=kind.id)
    appointment = await Appointment.get(id=appointment.id)
    cid = str(appointment.id)
    authorize = consultations.make_authorize(settings)

    # Signalling: the patient's join is refused with the reason (their network check is not), the doctor's is not.
    with pytest.raises(Closing) as refused:
        await seat_to_join(authorize, Principal(str(patient.id), "p"), cid)
    assert refused.value.code == 4403 and "complete the intake questionnaire" in refused.value.reason
    assert (await seat_for(authorize, Principal(str(patient.id), "p"), cid)).role == "patient"
    assert (await authorize(Principal(str(doctor.id), "d"), cid)).role == "host"

    # The call page shows the form instead of Join.
    await sign_in(client, patient)
    page = (await client.get(f"/consultations/{cid}")).text
    assert 'id="intake-form"' in page and 'id="join-button" hidden disabled' in page

    # Every problem at once, nothing written.
    bad = await client.put(f"/api/v1/appointments/{cid}/intake", json={
        "answers": {str(reason.id): "x" * 51, str(allergy.id): "maybe", "999": "?"},
        "consents": [{"document_id": consent.id, "full_name": "", "agreed": False}]})
    assert bad.status_code == 422
    messages = [f["message"] for f in bad.json()["error"]["fields"]]
    assert any("longer than 50 characters" in m for m in messages)
    assert any("with yes or no" in m for m in messages)
    assert any("no question '999'" in m for m in messages)
    assert any("Tick that you agree to 'Video consultation'" in m for m in messages)
    assert any("Type your full name" in m for m in messages)
    assert not await answers.is_complete(appointment)

    # The call page's own form: a mistake comes back with what was typed.
    token = client.headers["x-csrf-token"]
    form = {"csrf_token": token, f"answer-{reason.id}": "A sore knee", f"answer-{allergy.id}": "no",
            f"consent-{consent.id}-name": "Pat Patient"}
    again = await client.post(f"/consultations/{cid}/intake", data=form)
    assert again.status_code == 422 and "Tick that you agree" in again.text and 'value="A sore knee"' in again.text
    saved = await client.post(f"/consultations/{cid}/intake", data={**form, f"consent-{consent.id}-agree": "yes"})
    assert saved.status_code == 303 and saved.headers["location"] == f"/consultations/{cid}"
    page = (await client.get(f"/consultations/{cid}")).text
    assert 'id="intake-form"' not in page and 'id="join-button">' in page
    seat = await seat_to_join(authorize, Principal(str(patient.id), "p"), cid)
    assert seat.role == "patient" and seat.join_refused is None
    event = await Event.filter(type="intake.completed").first()
    assert event is not None and json.loads(event.data) == {"appointment_id": appointment.id}

    # Sealed at rest.
    conn = connections.get("default")
    _, rows = await conn.execute_query("SELECT answers FROM intake_responses")
    assert "sore knee" not in rows[0]["answers"]
    _, rows = await conn.execute_query("SELECT signed_name FROM consent_signatures")
    assert "Pat Patient" not in rows[0]["signed_name"]
    writes = await AuditEntry.filter(action="phi.write", subject_type="intake_response")
    assert [(w.actor_id, w.subject_id) for w in writes] == [(patient.id, cid)]

    # The doctor reads the answers and the signature with its version (audited), in the call and on the page.
    await sign_in(client, doctor, doctor_secret)
    read = (await client.get(f"/api/v1/appointments/{cid}/intake")).json()
    assert read["complete"] is True and read["consultation_type"] == "First visit"
    assert [(a["prompt"], a["answer"]) for a in read["answers"]] == [
        ("Why are you coming?", "A sore knee"), ("Any allergies?", "no"), ("Pain level", "")]
    assert [(s["title"], s["version"], s["signed_name"]) for s in read["signatures"]] == [
        ("Video consultation", 1, "Pat Patient")]
    call = (await client.get(f"/consultations/{cid}")).text
    assert 'id="intake-panel"' in call and "A sore knee" in call and "signed “Pat Patient”" in call
    assert "A sore knee" in (await client.get(f"/appointments/{cid}")).text
    reads = await AuditEntry.filter(action="phi.read", subject_type="intake_response", actor_id=doctor.id).count()
    assert reads == 3

    # A new wording is a new version: the old signature keeps version 1, the intake stays done.
    await intake.do_update_consent(doctor, consent.id, ConsentIn(title="Video consultation",
                                                                 text="I agree to be seen and heard by video."))
    read = (await client.get(f"/api/v1/appointments/{cid}/intake")).json()
    assert [(s["version"], s["signed_name"]) for s in read["signatures"]] == [(1, "Pat Patient")]
    assert read["complete"] is True

    # Another doctor, another patient, a guest: nothing to read.
    other_doctor = await make_user(Role.DOCTOR, "dr2@example.org", name="Dr Other")
    other_secret = await with_login(other_doctor, totp=True)
    await sign_in(client, other_doctor, other_secret)
    assert (await client.get(f"/api/v1/appointments/{cid}/intake")).status_code == 404
    stranger = await make_user(Role.PATIENT, "eve@example.org", name="Eve Elsewhere")
    await sign_in(client, stranger)
    assert (await client.get(f"/api/v1/appointments/{cid}/intake")).status_code == 404
    assert (await client.put(f"/api/v1/appointments/{cid}/intake", json={"answers": {}})).status_code == 404
    _, link = await guests.do_create_guest_invite(settings, doctor, appointment.id,
                                                  GuestInviteCreate(role="interpreter", label="Interpreter"),
                                                  at=datetime.now(UTC))
    opened = await client.post("/consultations/guest", data={
        "token": link.split("#", 1)[1], "name": "Cal", "csrf_token": client.headers["x-csrf-token"]})
    assert opened.status_code == 303, opened.text
    guest_page = (await client.get("/consultations/guest/call")).text
    assert 'id="call"' in guest_page
    assert "A sore knee" not in guest_page and "intake" not in guest_page.lower()
    assert (await client.get(f"/consultations/{cid}")).status_code == 404, "the guest's account holds no seat"
    assert (await client.post(f"/consultations/{cid}/intake",
                              data={"csrf_token": client.headers["x-csrf-token"]})).status_code == 404


async def test_a_doctor_without_types_is_joined_as_before_and_a_new_consent_must_be_signed(database):
    doctor = await make_user(Role.DOCTOR, "dr@example.org", name="Dr Dora")
    patient = await make_user(Role.PATIENT, "pat@example.org", name="Pat Patient")
    plain = await make_appointment(doctor, patient)
    assert await answers.is_complete(plain)
    assert (await consultations.make_authorize(database)(Principal(str(patient.id), "p"), str(plain.id))).role \
        == "patient"

    kind, reason, allergy, _, consent = await first_visit(doctor)
    typed = await make_appointment(doctor, patient, starts_in=timedelta(hours=3))
    await Appointment.filter(id=typed.id).update(consultation_type_id=kind.id)
    typed = await Appointment.get(id=typed.id)
    await answers.do_submit(patient, typed, IntakeSubmission(
        answers={str(reason.id): "Check-up", str(allergy.id): "yes"},
        consents=[{"document_id": consent.id, "full_name": "Pat Patient", "agreed": True}]))
    assert await answers.is_complete(typed)
    second = await intake.do_add_consent(doctor, kind.id, ConsentIn(title="Privacy", text="Your data is safe."))
    assert not await answers.is_complete(typed)  # a document added since must be signed too
    with pytest.raises(Exception, match="only|Only"):
        await answers.do_submit(doctor, typed, IntakeSubmission())
    await answers.do_submit(patient, typed, IntakeSubmission(
        answers={str(reason.id): "Check-up", str(allergy.id): "yes"},
        consents=[{"document_id": consent.id, "full_name": "Pat Patient", "agreed": True},
                  {"document_id": second.id, "full_name": "Pat Patient", "agreed": True}]))
    assert await answers.is_complete(typed)
    record = await answers.read(patient, typed)
    assert [s.title for s in record.signatures] == ["Video consultation", "Privacy"]  # the first kept, once
