"""Care packages, tasks and completions on SQLite and PostgreSQL: ownership, idempotency,
corrections, missed tasks, events and the compliance PDF."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from pypdf import PdfReader

from caretrack.care import service as care
from caretrack.care.models import CarePackage, MissedTask, TaskCompletion
from caretrack.care.schemas import CompletionIn, TaskChange, TaskIn
from caretrack.care.service import day_start
from caretrack.core.audit.models import AuditEntry
from caretrack.core.errors import Conflict, NotFound, ValidationError
from caretrack.core.outbox import store as outbox
from caretrack.core.roles import Role
from caretrack.core.validation import parse_command
from caretrack.reports.service import package_compliance_pdf
from tests.care.helpers import admin_user, package_with_task
from tests.helpers import csrf_token, login, make_user


async def test_client_details_are_sealed_and_reads_are_audited(database):
    admin, _ = await admin_user()
    carer = await make_user(Role.CARER, "cara@example.org")
    package, _ = await package_with_task(admin, carer)
    row = await CarePackage.get(id=package.id)
    assert "Iris" not in row.client_name and "High Street" not in (row.address or "")
    view = await care.get_package(carer, package.id, "10.0.0.1")
    assert view.client_name == "Mrs Iris Client" and view.care_notes == "Diabetic; likes tea"
    assert await AuditEntry.filter(action="phi.read", subject_type="care_package", actor_id=carer.id).exists()
    assert await AuditEntry.filter(action="phi.write", subject_type="care_package", actor_id=admin.id).exists()


async def test_a_carer_reaches_only_their_own_packages_and_tasks(app, client):
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara")
    carl = await make_user(Role.CARER, "carl@example.org", name="Carl")
    package, task = await package_with_task(admin, cara)
    await login(client, carl.email)
    token = await csrf_token(client, "/account")
    headers = {"x-csrf-token": token}
    for path in (f"/api/v1/care/packages/{package.id}", f"/api/v1/care/tasks/{task.id}/completions"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    response = await client.post(f"/api/v1/care/tasks/{task.id}/completions", headers=headers,
                                 json={"idempotency_key": "carl-key-0001"})
    assert response.status_code == 404
    assert (await client.get(f"/carer/tasks/{task.id}")).status_code == 404
    assert (await client.get("/api/v1/care/packages")).json() == {"packages": []}
    assert "Medication prompt" not in (await client.get("/carer")).text
    assert await TaskCompletion.all().count() == 0

    await login(client, "cara@example.org")
    today = (await client.get("/api/v1/care/today")).json()
    assert [t["task"]["title"] for t in today["tasks"]] == ["Medication prompt"]
    assert today["tasks"][0]["expected"] == 3 and today["tasks"][0]["client_name"] == "Mrs Iris Client"
    assert (await client.get(f"/api/v1/care/packages/{package.id}")).json()["client_name"] == "Mrs Iris Client"
    # an admin route is refused to a carer
    refused = await client.post(f"/api/v1/care/packages/{package.id}/tasks",
                                headers={"x-csrf-token": await csrf_token(client)},
                                json={"carer_id": cara.id, "title": "x", "target": 1, "period": "day"})
    assert refused.status_code == 403


async def test_a_completion_sent_twice_is_recorded_once(app, client, now):
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara")
    _, task = await package_with_task(admin, cara)
    await login(client, "cara@example.org")
    headers = {"x-csrf-token": await csrf_token(client)}
    body = {"idempotency_key": "retry-after-lost-connection", "note": "Took it with water"}
    first = await client.post(f"/api/v1/care/tasks/{task.id}/completions", headers=headers, json=body)
    second = await client.post(f"/api/v1/care/tasks/{task.id}/completions", headers=headers, json=body)
    assert first.status_code == 201 and second.status_code == 200
    assert second.json()["replayed"] is True and second.json()["id"] == first.json()["id"]
    assert await TaskCompletion.filter(task_id=task.id).count() == 1
    today = (await client.get("/api/v1/care/today")).json()
    assert today["tasks"][0]["done"] == 1
    # the note is sealed at rest
    assert "water" not in (await TaskCompletion.get(id=first.json()["id"])).note
    # a fresh key is a new completion
    third = await client.post(f"/api/v1/care/tasks/{task.id}/completions", headers=headers,
                              json={"idempotency_key": "second-dose-key"})
    assert third.status_code == 201
    assert (await client.get("/api/v1/care/today")).json()["tasks"][0]["done"] == 2


async def test_bad_completion_input_is_a_clear_4xx(database, now):
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org")
    _, task = await package_with_task(admin, cara)
    with pytest.raises(ValidationError, match="Say why"):
        await care.do_log_completion(
            cara, task.id, parse_command(CompletionIn, {"idempotency_key": "abcdefgh1", "status": "not_done"}), at=now)
    with pytest.raises(ValidationError, match="idempotency key"):
        await care.do_log_completion(cara, task.id, parse_command(CompletionIn, {"idempotency_key": "short"}), at=now)
    with pytest.raises(ValidationError, match="future"):
        await care.do_log_completion(
            cara, task.id, CompletionIn(idempotency_key="abcdefgh2", occurred_at=now + timedelta(minutes=6)), at=now)
    with pytest.raises(ValidationError, match="7 days ago"):
        await care.do_log_completion(
            cara, task.id, CompletionIn(idempotency_key="abcdefgh3", occurred_at=now - timedelta(days=7, minutes=1)),
            at=now)
    # a device clock a few minutes ahead is still "now"
    await care.do_log_completion(
        cara, task.id, CompletionIn(idempotency_key="abcdefgh4", occurred_at=now + timedelta(minutes=4)), at=now)
    other = await make_user(Role.CARER, "other@example.org")
    await care.do_log_completion(cara, task.id, CompletionIn(idempotency_key="shared-key-1"), at=now)
    with pytest.raises(NotFound):
        await care.do_log_completion(other, task.id, CompletionIn(idempotency_key="shared-key-1"), at=now)
    with pytest.raises(ValidationError, match="before it starts"):
        await care.do_create_task(admin, task.package_id, parse_command(TaskIn, {
            "carer_id": cara.id, "title": "x", "target": 1, "period": "day", "window_start": "18:00",
            "window_end": "08:00"}), None)


async def test_a_correction_replaces_the_count_and_keeps_the_original(database, now):
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org")
    _, task = await package_with_task(admin, cara)
    original, _ = await care.do_log_completion(cara, task.id, CompletionIn(idempotency_key="first-key-1"), at=now)
    today = now.date()
    assert (await care.done_counts([task.id], today, today)).get(task.id, 0) == 1
    corrected, created = await care.do_correct_completion(
        cara, original.id, CompletionIn(idempotency_key="fix-key-01", status="not_done", reason="Client declined"),
        at=now)
    assert created
    assert (await care.done_counts([task.id], today, today)).get(task.id, 0) == 0
    await original.refresh_from_db()
    assert original.superseded_at == now and original.status == "done"
    entry = await AuditEntry.get(action="care.task_corrected")
    assert json.loads(entry.detail)["original_status"] == "done"
    with pytest.raises(Conflict):
        await care.do_correct_completion(
            cara, original.id, CompletionIn(idempotency_key="fix-key-02", status="done"), at=now)
    # the same correction retried is recorded once
    again, created = await care.do_correct_completion(
        cara, original.id, CompletionIn(idempotency_key="fix-key-01", status="not_done", reason="Client declined"),
        at=now)
    assert not created and again.id == corrected.id


async def test_changing_and_reassigning_a_task_reaches_the_carers(database):
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org")
    carl = await make_user(Role.CARER, "carl@example.org")
    _, task = await package_with_task(admin, cara)
    await care.do_assign_carer(admin, task.package_id, carl.id, None)
    events = [d.event for d in await outbox.read_history(cara.id, after=0)]
    assert [e.type for e in events] == ["care.package_assigned", "task.assigned"]
    assert events[1].data["title"] == "Medication prompt" and events[1].data["target"] == 3
    await care.do_update_task(admin, task.id, TaskChange(target=4), None)
    await care.do_update_task(admin, task.id, TaskChange(carer_id=carl.id), None)
    cara_types = [d.event.type for d in await outbox.read_history(cara.id, after=0)]
    carl_events = [d.event for d in await outbox.read_history(carl.id, after=0)]
    assert cara_types == ["care.package_assigned", "task.assigned", "task.updated", "task.removed"]
    assert [e.type for e in carl_events] == ["care.package_assigned", "task.assigned"]
    assert carl_events[1].data["target"] == 4
    with pytest.raises(NotFound):
        await care.do_log_completion(cara, task.id, CompletionIn(idempotency_key="after-reassign"))
    await care.do_log_completion(carl, task.id, CompletionIn(idempotency_key="carl-logs-it"))
    admin_events = [d.event for d in await outbox.read_history(admin.id, after=0)]
    completed = [e for e in admin_events if e.type == "task.completed"]
    assert len(completed) == 1 and completed[0].actor_id == carl.id and completed[0].data["status"] == "done"


async def test_a_task_short_of_its_target_is_reported_missed_once(database, now):
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara")
    _, task = await package_with_task(admin, cara, target=2)
    yesterday = now - timedelta(days=1)
    await care.do_log_completion(
        cara, task.id, CompletionIn(idempotency_key="only-one-yday", occurred_at=yesterday), at=now)
    # pretend the task existed before yesterday
    from caretrack.care.models import CareTask

    await CareTask.filter(id=task.id).update(created_at=now - timedelta(days=5))
    # early the next day: yesterday's window has closed, today's (00:00-24:00) is still open
    at = day_start(now.date()) + timedelta(minutes=30)
    assert await care.check_missed(at) == 1
    assert await care.check_missed(at) == 0
    miss = await MissedTask.get(task_id=task.id)
    assert (miss.done, miss.target, miss.on_date) == (1, 2, yesterday.date())
    missed = [d.event for d in await outbox.read_history(admin.id, after=0) if d.event.type == "task.missed"]
    assert len(missed) == 1 and missed[0].data["done"] == 1 and missed[0].data["expected"] == 2


async def test_the_compliance_pdf_holds_the_figures(database, now):
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    package, meds = await package_with_task(admin, cara, target=3, starts_on=now.date() - timedelta(days=1))
    fluids = await care.do_create_task(admin, package.id, TaskIn.model_validate({
        "carer_id": cara.id, "title": "Fluid chart", "target": 1, "period": "visit"}), None)
    for i in range(4):
        await care.do_log_completion(cara, meds.id, CompletionIn(idempotency_key=f"meds-key-{i}"), at=now)
    await care.do_log_completion(cara, fluids.id, CompletionIn(idempotency_key="fluid-key-0"), at=now)
    await care.do_log_completion(
        cara, fluids.id, CompletionIn(idempotency_key="fluid-key-1", status="not_done", reason="Client declined"),
        at=now)
    start, end = now.date() - timedelta(days=1), now.date()
    data = await package_compliance_pdf(admin, package.id, start, end, "Sunrise Home Care", None, at=now)
    reader = PdfReader(io.BytesIO(data))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Sunrise Home Care" in text
    assert f"Period: {start} to {end}" in text and "Generated:" in text
    assert f"Page 1 of {len(reader.pages)}" in text
    assert "Client: Mrs Iris Client" in text
    # meds: 3 a day over 2 days = 6 expected, 4 done (67%); fluids: 1 per visit, 3 visits, 2 days = 6, 1 done
    assert "Medication prompt" in text and "Fluid chart" in text
    assert "5 of 12 expected completions (42%)" in text
    lines = text.splitlines()
    meds_line = next(line for line in lines if line.startswith("Medication prompt"))
    assert meds_line.split()[-4:] == ["6", "4", "0", "67%"], meds_line
    fluid_line = next(line for line in lines if line.startswith("Fluid chart"))
    assert fluid_line.split()[-4:] == ["6", "1", "1", "17%"], fluid_line


async def test_a_package_takes_the_agency_zone_unless_the_admin_names_one(app, client):
    admin, secret = await admin_user()
    await login(client, admin.email, totp_secret=secret)
    headers = {"x-csrf-token": await csrf_token(client)}
    body = {"client_name": "Mrs Zone", "starts_on": "2026-11-23"}
    made = await client.post("/api/v1/care/packages", headers=headers, json=body)
    assert made.status_code == 201 and made.json()["time_zone"] == app.state.settings.care_time_zone
    named = await client.post("/api/v1/care/packages", headers=headers, json={**body, "time_zone": "Europe/London"})
    assert named.status_code == 201 and named.json()["time_zone"] == "Europe/London"
    wrong = await client.post("/api/v1/care/packages", headers=headers, json={**body, "time_zone": "Europe/Londn"})
    assert wrong.status_code == 422 and "'Europe/Londn' is not a time zone" in wrong.text
    assert await CarePackage.all().count() == 2
