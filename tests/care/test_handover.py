"""Handover notes on SQLite and PostgreSQL: sealed at rest, reads audited, marked completion
notes, the next carer's handover since their last visit, the office's timeline and events."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from pypdf import PdfReader

from caretrack.care import service as care
from caretrack.care.notes_models import HandoverNote
from caretrack.care.notes_schemas import IncidentIn, NoteIn
from caretrack.care.schemas import CompletionIn, TaskIn
from caretrack.care.service import rota, visits
from caretrack.care.visit_schemas import RotaEntryIn, VisitCheck
from caretrack.core.audit.models import AuditEntry
from caretrack.core.errors import NotFound, ValidationError
from caretrack.core.outbox import store as outbox
from caretrack.core.roles import Role
from caretrack.core.validation import parse_command
from caretrack.reports.service import package_compliance_pdf
from tests.care.helpers import admin_user, package_with_task
from tests.helpers import csrf_token, login, make_user


async def _setup():
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    carl = await make_user(Role.CARER, "carl@example.org", name="Carl Carer")
    package, task = await package_with_task(admin, cara)
    await care.do_assign_carer(admin, package.id, carl.id, None)
    carl_task = await care.do_create_task(admin, package.id, TaskIn.model_validate({
        "carer_id": carl.id, "title": "Lunch", "target": 1, "period": "day"}), None)
    return admin, cara, carl, package, task, carl_task


async def test_a_note_is_sealed_audited_and_announced_without_phi(database, now):
    admin, cara, carl, package, _, _ = await _setup()
    note = await care.do_write_note(cara, package.id, NoteIn(text="Slight nausea after lunch", for_office=True,
                                                             for_next_carer=True), client_address="10.0.0.1", at=now)
    row = await HandoverNote.get(id=note.id)
    assert "nausea" not in row.body and row.written_at == now
    assert await AuditEntry.filter(action="phi.write", subject_type="handover_note", subject_id=str(note.id)).exists()
    # the office hears of it, and so does the package's other carer (not the author twice)
    for user in (admin, carl):
        events = [d.event for d in await outbox.read_history(user.id, after=0) if d.event.type == "care.note"]
        assert len(events) == 1, user.email
        assert events[0].data == {"note_id": note.id, "package_id": package.id, "completion_id": None,
                                  "for_office": True, "for_next_carer": True}
        assert events[0].actor_id == cara.id
        assert "nausea" not in json.dumps(events[0].data)
    # a note for the office only does not reach the other carers
    await care.do_write_note(cara, package.id, NoteIn(text="Running low on gloves", for_office=True),
                             client_address=None, at=now)
    assert len([d for d in await outbox.read_history(carl.id, after=0) if d.event.type == "care.note"]) == 1
    assert len([d for d in await outbox.read_history(admin.id, after=0) if d.event.type == "care.note"]) == 2


async def test_a_note_needs_an_audience_and_text_and_a_package_of_yours(database, now):
    admin, cara, _, package, _, _ = await _setup()
    with pytest.raises(ValidationError, match="for the office, for the next carer, or both"):
        parse_command(NoteIn, {"text": "Hello"})
    with pytest.raises(ValidationError, match="note is required"):
        parse_command(NoteIn, {"text": "  ", "for_office": "on"})
    assert parse_command(NoteIn, {"text": "Hi", "for_next_carer": "on"}).for_next_carer is True
    stranger = await make_user(Role.CARER, "stranger@example.org")
    with pytest.raises(NotFound):
        await care.do_write_note(stranger, package.id, NoteIn(text="x", for_office=True), client_address=None, at=now)
    with pytest.raises(ValidationError, match="Write a note to mark it"):
        parse_command(CompletionIn, {"idempotency_key": "abcdefgh1", "note_for_office": True})


async def test_a_marked_completion_note_is_a_handover_note_kept_once(database, now):
    admin, cara, carl, package, task, _ = await _setup()
    completion, _ = await care.do_log_completion(cara, task.id, CompletionIn(
        idempotency_key="meds-note-01", note="Done — slight nausea reported", note_for_next_carer=True), at=now)
    note = await HandoverNote.get(completion_id=completion.id)
    assert note.body is None and note.for_next_carer and not note.for_office and note.written_at == now
    events = [d.event for d in await outbox.read_history(admin.id, after=0) if d.event.type == "care.note"]
    assert [e.data["completion_id"] for e in events] == [completion.id]
    # a retry records nothing more
    await care.do_log_completion(cara, task.id, CompletionIn(
        idempotency_key="meds-note-01", note="Done — slight nausea reported", note_for_next_carer=True), at=now)
    assert await HandoverNote.all().count() == 1
    # an unmarked note stays the task's own
    await care.do_log_completion(cara, task.id, CompletionIn(idempotency_key="meds-note-02", note="Fine"), at=now)
    assert await HandoverNote.all().count() == 1
    # carl, next in, reads it (an audited read of the completion's note)
    later = now + timedelta(hours=5)
    handover = await care.handover_for(carl, package.id, "10.0.0.2", at=later)
    assert [(v.text, v.author_name, v.task_title) for v in handover] == [
        ("Done — slight nausea reported", "Cara Carer", "Medication prompt")]
    entry = await AuditEntry.filter(action="phi.read", subject_type="task_completion", actor_id=carl.id).first()
    assert entry is not None and json.loads(entry.detail)["ids"] == [completion.id]
    # a correction replaces it: the corrected note is the one handed over
    fixed, _ = await care.do_correct_completion(cara, completion.id, CompletionIn(
        idempotency_key="meds-fix-001", note="Done — nausea passed", note_for_next_carer=True), at=now)
    assert [v.text for v in await care.handover_for(carl, package.id, None, at=later)] == ["Done — nausea passed"]
    assert fixed.id != completion.id


async def test_the_next_carer_sees_notes_since_their_last_visit(database, now):
    admin, cara, carl, package, task, carl_task = await _setup()
    day_before = now - timedelta(days=1)
    # carl's last visit ended yesterday; cara's note before it is old news, her note after it is not
    await care.do_write_note(cara, package.id, NoteIn(text="Old news", for_next_carer=True), client_address=None,
                             at=day_before - timedelta(hours=1))
    await care.do_log_completion(
        carl, carl_task.id, CompletionIn(idempotency_key="carl-yday-1", occurred_at=day_before), at=now)
    await care.do_write_note(cara, package.id, NoteIn(text="Fresh news", for_next_carer=True), client_address=None,
                             at=now - timedelta(hours=3))
    await care.do_write_note(cara, package.id, NoteIn(text="Office only", for_office=True), client_address=None,
                             at=now - timedelta(hours=3))
    assert [v.text for v in await care.handover_for(carl, package.id, None, at=now)] == ["Fresh news"]
    # logging during this visit does not hide what he came to read
    await care.do_log_completion(carl, carl_task.id, CompletionIn(idempotency_key="carl-today-1"), at=now)
    assert [v.text for v in await care.handover_for(carl, package.id, None, at=now + timedelta(minutes=20))] == [
        "Fresh news"]
    # his own notes are not handed back to him; another carer's package is 404
    await care.do_write_note(carl, package.id, NoteIn(text="Carl's", for_next_carer=True), client_address=None,
                             at=now)
    assert [v.text for v in await care.handover_for(carl, package.id, None, at=now)] == ["Fresh news"]
    stranger = await make_user(Role.CARER, "stranger@example.org")
    with pytest.raises(NotFound):
        await care.handover_for(stranger, package.id, None, at=now)
    # the dashboard shows it under the client
    boards = await care.handovers(carl, [(package.id, "Mrs Iris Client")], None, at=now)
    assert [(h.client_name, [v.text for v in h.notes]) for h in boards] == [("Mrs Iris Client", ["Fresh news"])]


async def test_the_timeline_pages_notes_completions_and_incidents_newest_first(database, now):
    admin, cara, _, package, task, _ = await _setup()
    for i in range(3):
        await care.do_write_note(cara, package.id, NoteIn(text=f"Note {i}", for_office=True), client_address=None,
                                 at=now - timedelta(hours=6 - i))
    await care.do_log_completion(cara, task.id, CompletionIn(
        idempotency_key="timeline-c1", note="Took it", note_for_office=True, occurred_at=now - timedelta(hours=2)),
        at=now)
    await care.do_log_completion(cara, task.id, CompletionIn(idempotency_key="timeline-c2"), at=now)  # no note
    await _raise(cara, package.id, now)
    first = await care.package_timeline(admin, package.id, None, page=1, page_size=3)
    assert [item.kind for item in first.items] == ["incident", "completion", "note"] and first.has_next
    assert first.items[0].incident.what_happened == "Slipped in the bathroom"
    assert first.items[1].completion.note == "Took it" and first.items[1].completion.audience == "the office"
    assert first.items[2].note.text == "Note 2"
    second = await care.package_timeline(admin, package.id, None, page=2, page_size=3)
    assert [item.note.text for item in second.items] == ["Note 1", "Note 0"] and not second.has_next
    assert await AuditEntry.filter(action="phi.read", subject_type="care_incident", actor_id=admin.id).exists()


async def _raise(user, package_id, now):
    return await care.do_raise_incident(user, package_id, IncidentIn.model_validate({
        "kind": "fall", "severity": "high", "what_happened": "Slipped in the bathroom",
        "occurred_at": (now - timedelta(hours=1)).isoformat()}), client_address=None, at=now)


async def test_the_compliance_pdf_lists_the_notes_for_the_office(database, now):
    admin, cara, _, package, task, _ = await _setup()
    await care.do_write_note(cara, package.id, NoteIn(text="Needs more incontinence pads", for_office=True),
                             client_address=None, at=now)
    await care.do_write_note(cara, package.id, NoteIn(text="Only for the next carer", for_next_carer=True),
                             client_address=None, at=now)
    await care.do_log_completion(cara, task.id, CompletionIn(idempotency_key="pdf-note-01", note="Refused breakfast",
                                                             note_for_office=True), at=now)
    data = await package_compliance_pdf(admin, package.id, now.date() - timedelta(days=1), now.date(),
                                        "Sunrise Home Care", None, at=now)
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    assert "Notes for the office" in text
    assert "Needs more incontinence pads" in text and "Refused breakfast" in text
    assert "Only for the next carer" not in text
    assert "Cara Carer" in text and "Medication prompt" in text


async def test_the_pages_carry_notes_from_one_carer_to_the_next_and_to_the_office(app, client):
    admin, secret = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    carl = await make_user(Role.CARER, "carl@example.org", name="Carl Carer")
    package, task = await package_with_task(admin, cara)
    await care.do_assign_carer(admin, package.id, carl.id, None)
    carl_task = await care.do_create_task(admin, package.id, TaskIn.model_validate({
        "carer_id": carl.id, "title": "Lunch", "target": 1, "period": "day"}), None)
    await login(client, "cara@example.org")
    token = await csrf_token(client, "/carer")
    assert 'name="note_for_next_carer"' in (await client.get("/carer")).text
    logged = await client.post(f"/carer/tasks/{task.id}/log", data={
        "key": "page-note-0001", "note": "Done — slight nausea reported", "note_for_next_carer": "on",
        "csrf_token": token})
    assert logged.status_code == 303
    refused = await client.post(f"/carer/packages/{package.id}/notes", data={"text": "No audience",
                                                                           "csrf_token": token})
    assert refused.status_code == 422 and "for the office, for the next carer, or both" in refused.text
    assert (await client.post(f"/carer/packages/{package.id}/notes", data={
        "text": "Boiler is making a noise", "for_office": "on"})).status_code == 403  # no CSRF token
    written = await client.post(f"/carer/packages/{package.id}/notes", data={
        "text": "Boiler is making a noise", "for_office": "on", "csrf_token": token})
    assert written.status_code == 303 and written.headers["location"] == f"/carer#handover-{package.id}"
    # over the API too
    api_note = await client.post(f"/api/v1/care/packages/{package.id}/notes", headers={"x-csrf-token": token},
                                 json={"text": "Key safe code changed", "for_next_carer": True})
    assert api_note.status_code == 201 and api_note.json()["author_name"] == "Cara Carer"

    await login(client, "carl@example.org")
    board = (await client.get("/carer/today")).text
    assert f'id="handover-{package.id}"' in board and "Mrs Iris Client" in board
    assert "Done — slight nausea reported" in board and "Key safe code changed" in board
    assert "Boiler" not in board  # for the office only
    handover = (await client.get(f"/api/v1/care/packages/{package.id}/handover")).json()["notes"]
    assert [(n["text"], n["task_title"]) for n in handover] == [
        ("Key safe code changed", None), ("Done — slight nausea reported", "Medication prompt")]
    stranger = await make_user(Role.CARER, "stranger@example.org")
    await login(client, stranger.email)
    assert (await client.get(f"/api/v1/care/packages/{package.id}/handover")).status_code == 404
    token = await csrf_token(client, "/carer")
    assert (await client.post(f"/carer/packages/{package.id}/notes", data={
        "text": "x", "for_office": "on", "csrf_token": token})).status_code == 404

    await login(client, admin.email, totp_secret=secret)
    page = (await client.get(f"/admin/care/packages/{package.id}")).text
    assert 'id="package-timeline"' in page
    for text in ("Done — slight nausea reported", "Boiler is making a noise", "Key safe code changed"):
        assert text in page, text
    assert "for the office" in page and "for the next carer" in page
    assert (await client.get(f"/admin/care/packages/{package.id}?timeline_page=0")).status_code == 422
    assert carl_task.carer_id == carl.id


async def test_the_timeline_page_shows_the_newest_first_and_pages_back(app, client, now):
    admin, secret = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    package, _ = await package_with_task(admin, cara)
    for i in range(22):
        await care.do_write_note(cara, package.id, NoteIn(text=f"Timeline note {i:02}", for_office=True),
                                 client_address=None, at=now - timedelta(minutes=30 - i))
    await login(client, admin.email, totp_secret=secret)
    first = (await client.get(f"/admin/care/packages/{package.id}")).text
    assert "Timeline note 21" in first and "Timeline note 02" in first and "Timeline note 01" not in first
    assert first.index("Timeline note 21") < first.index("Timeline note 20")
    assert "?timeline_page=2" in first
    second = (await client.get(f"/admin/care/packages/{package.id}?timeline_page=2")).text
    assert "Timeline note 01" in second and "Timeline note 00" in second and "Timeline note 02" not in second
    assert await AuditEntry.filter(action="phi.read", subject_type="handover_note", actor_id=admin.id).count() == 2


async def test_a_carer_who_checks_in_and_out_sees_the_notes_left_since_their_last_check_out(database):
    """With visits on the rota, "since your last visit" is since the carer last checked out there."""
    admin, cara, carl, package, _, _ = await _setup()
    today = datetime(2026, 10, 25, 9, 5, tzinfo=UTC)  # London's clocks went back overnight; the package is on UTC
    yesterday = today - timedelta(days=1)
    entry = await rota.do_add_visit(admin, package.id, RotaEntryIn.model_validate({
        "carer_id": carl.id, "weekdays": "1234567", "start": "09:00", "length": 30}), None, at=yesterday)
    late = timedelta(minutes=15)
    await visits.do_check_in(carl, entry.id, VisitCheck(on_date=yesterday.date()), client_address=None,
                             at=yesterday - timedelta(minutes=5), late_after=late)
    await care.do_write_note(cara, package.id, NoteIn(text="While he was there", for_next_carer=True),
                             client_address=None, at=yesterday + timedelta(minutes=10))
    await visits.do_check_out(carl, entry.id, VisitCheck(on_date=yesterday.date()), client_address=None,
                              at=yesterday + timedelta(minutes=25), late_after=late)
    await care.do_write_note(cara, package.id, NoteIn(text="After he left", for_next_carer=True),
                             client_address=None, at=yesterday + timedelta(hours=3))
    await visits.do_check_in(carl, entry.id, VisitCheck(on_date=today.date()), client_address=None, at=today,
                             late_after=late)
    assert [v.text for v in await care.handover_for(carl, package.id, None, at=today)] == ["After he left"]
