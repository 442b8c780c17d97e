"""Who may join which call, and what a call leaves behind: on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from tortoise import connections

from caretrack.booking.models import AppointmentStatus
from caretrack.consultations import service
from caretrack.consultations.models import ChatMessage, Consultation, Recording
from caretrack.core import crypto
from caretrack.core.audit.models import AuditEntry
from caretrack.core.errors import Forbidden, NotFound
from signalling import Principal, Refused
from tests.consultations.conftest import make_appointment


async def test_only_the_appointments_doctor_and_patient_hold_seats_by_account(database, people):
    settings = database
    appointment = await make_appointment(people["doctor"], people["patient"])
    authorize = service.make_authorize(settings)
    cid = str(appointment.id)
    assert (await authorize(Principal(str(people["doctor"].id), "d"), cid)).role == "host"
    seat = await authorize(Principal(str(people["patient"].id), "p"), cid)
    assert seat.role == "patient" and seat.closed_reason(service.now()) is None
    with pytest.raises(Refused) as refused:
        await authorize(Principal(str(people["stranger"].id), "e"), cid)
    assert refused.value.code == 4403
    with pytest.raises(Refused):
        await authorize(Principal(str(people["doctor"].id), "d"), "999999")
    with pytest.raises(Refused):
        await authorize(Principal(str(people["doctor"].id), "d"), "1; DROP TABLE")
    # a guest's seat is their invitation, not an account: tests/consultations/test_guests.py


async def test_an_admission_is_remembered_once_and_audited(database, people):
    settings = database
    appointment = await make_appointment(people["doctor"], people["patient"])
    authorize, hooks = service.make_authorize(settings), service.CallHooks(settings)
    patient, doctor = Principal(str(people["patient"].id), "p"), Principal(str(people["doctor"].id), "d")
    cid = str(appointment.id)
    assert (await authorize(patient, cid)).admitted is False
    await hooks.on_admit(cid, doctor, patient)
    await hooks.on_admit(cid, doctor, patient)  # admitted again after a reconnect: one row, one audit entry
    assert (await authorize(patient, cid)).admitted is True
    other = await make_appointment(people["doctor"], people["patient"], starts_in=timedelta(hours=2))
    assert (await authorize(patient, str(other.id))).admitted is False  # per appointment
    entries = await AuditEntry.filter(action="consultation.admitted")
    assert [(e.actor_id, e.subject_id, json.loads(e.detail)) for e in entries] == [
        (people["doctor"].id, cid, {"user": people["patient"].id})]


async def test_the_join_window_and_closed_consultations(database, people):
    settings = database
    later = await make_appointment(people["doctor"], people["patient"], starts_in=timedelta(hours=3))
    seat = await service.make_authorize(settings)(Principal(str(people["patient"].id), "p"), str(later.id))
    assert "opens at" in seat.closed_reason(service.now())
    soon = await make_appointment(people["doctor"], people["patient"],
                                  starts_in=timedelta(minutes=settings.call_window_minutes - 1))
    seat = await service.make_authorize(settings)(Principal(str(people["patient"].id), "p"), str(soon.id))
    assert seat.closed_reason(service.now()) is None
    cancelled = await make_appointment(people["doctor"], people["patient"], starts_in=timedelta(days=2),
                                       status=AppointmentStatus.CANCELLED)
    with pytest.raises(Refused) as refused:
        await service.make_authorize(settings)(Principal(str(people["patient"].id), "p"), str(cancelled.id))
    assert refused.value.code == 4409
    await service.CallHooks(settings).on_end(str(soon.id), Principal(str(people["doctor"].id), "d"))
    assert (await Consultation.get(appointment_id=soon.id)).ended_at is not None
    with pytest.raises(Refused) as ended:
        await service.make_authorize(settings)(Principal(str(people["patient"].id), "p"), str(soon.id))
    assert ended.value.code == 4409


async def test_chat_and_notes_are_ciphertext_and_only_for_the_right_people(database, people):
    settings = database
    appointment = await make_appointment(people["doctor"], people["patient"])
    hooks = service.CallHooks(settings)
    stored = await hooks.on_chat(str(appointment.id), Principal(str(people["patient"].id), "p"), "my knee hurts")
    raw = await ChatMessage.get(id=int(stored.id))
    assert "knee" not in raw.text and raw.text.startswith("v1.")
    history = await service.chat_history(settings, people["doctor"], appointment.id)
    assert [(m["name"], m["text"]) for m in history] == [("Pat Patient", "my knee hurts")]
    with pytest.raises(NotFound):
        await service.chat_history(settings, people["stranger"], appointment.id)

    await service.do_save_notes(settings, people["doctor"], appointment.id, "Suspected meniscus tear.")
    conn = connections.get("default")
    _, rows = await conn.execute_query(f"SELECT notes FROM consultations WHERE appointment_id = {appointment.id}")
    assert "meniscus" not in rows[0]["notes"]
    assert await service.read_notes(settings, people["doctor"], appointment.id) == "Suspected meniscus tear."
    with pytest.raises(Forbidden):
        await service.read_notes(settings, people["patient"], appointment.id)
    with pytest.raises(NotFound):
        await service.read_notes(settings, people["stranger"], appointment.id)
    assert await AuditEntry.filter(action="phi.read", subject_type="consultation_notes").count() == 1


async def test_recordings_are_encrypted_at_rest_and_every_download_is_audited(database, people, tmp_path):
    settings = database.replace(data_dir=tmp_path)
    appointment = await make_appointment(people["doctor"], people["patient"])
    raw = tmp_path / "raw.webm"
    content = bytes(range(256)) * 9000  # > 2 MiB: several encrypted chunks
    raw.write_bytes(content)
    hooks = service.CallHooks(settings)
    await hooks.on_recording_started(str(appointment.id), raw)
    await hooks.on_recording_stopped(str(appointment.id), raw)
    assert not raw.exists(), "the plaintext is removed"
    [recording] = await service.list_recordings(settings, people["doctor"], appointment.id)
    stored = (settings.data_dir / "recordings" / recording.file_name).read_bytes()
    assert content[:4096] not in stored and len(stored) > len(content)
    _, chunks = await service.open_recording(settings, people["doctor"], appointment.id, recording.id)
    assert b"".join(chunks) == content
    assert await AuditEntry.filter(action="recording.downloaded", subject_id=str(recording.id)).count() == 1
    with pytest.raises(Forbidden):
        await service.open_recording(settings, people["patient"], appointment.id, recording.id)
    with pytest.raises(NotFound):
        await service.open_recording(settings, people["stranger"], appointment.id, recording.id)

    # a file cut short or altered does not decrypt
    path = settings.data_dir / "recordings" / recording.file_name
    path.write_bytes(stored[: len(stored) // 2])
    with pytest.raises(crypto.DecryptionError):
        b"".join(crypto.decrypt_file(path, service.recording_context(recording.file_name)))
    assert await Recording.filter(appointment_id=appointment.id).count() == 1
