"""The client's record and the package's lifecycle, on SQLite and PostgreSQL: the record sealed
and every read audited, the carer's client page (theirs only), edits that change only what is
given, ending and archiving, carers removed or replaced with their tasks handed over or flagged,
reminders cancelled, and the events each change sends."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta

import pytest

from caretrack.care import jobs as care_jobs  # noqa: F401  (registers the reminder jobs)
from caretrack.care import service as care
from caretrack.care.models import CarePackage, CareTask
from caretrack.care.schemas import CompletionIn, PackageChange, PackageEnd, PackageIn, TaskChange, TaskIn
from caretrack.care.service import reminders, visits
from caretrack.care.service import rota as care_rota
from caretrack.core.audit.models import AuditEntry
from caretrack.core.errors import Conflict, NotFound, ValidationError
from caretrack.core.outbox import store as outbox
from caretrack.core.queue.models import Job
from caretrack.core.roles import Role
from caretrack.realtime import feed
from tests.care.helpers import LONG_AGO, admin_user, staff_visits
from tests.helpers import csrf_token, login, make_user

RECORD = {
    "client_name": "Mrs Edna Marsh", "address": "4 Mill Lane\nLeeds LS1 4AB", "care_notes": "Likes tea before meds",
    "access_notes": "Key safe by the back door, code 4812", "allergies": "Penicillin; peanuts",
    "next_of_kin_name": "Tom Marsh", "next_of_kin_relationship": "son", "next_of_kin_phone": "07700 900123",
    "gp_practice": "Mill Lane Surgery", "gp_phone": "+44 (0)113 496 0000",
}
EARLY = datetime(2026, 3, 29, 5, 0, tzinfo=UTC)  # the 08:00 visit's reminder (07:30) is planned ahead


async def record_package(admin, *carers, starts_on: date = LONG_AGO, ends_on: date | None = None,
                         visit_times: str = "08:00,18:00") -> CarePackage:
    package = await care.do_create_package(admin, PackageIn.model_validate({
        **RECORD, "starts_on": starts_on.isoformat(), "ends_on": ends_on.isoformat() if ends_on else None,
        "visit_times": visit_times}), None)
    for carer in carers:
        await care.do_assign_carer(admin, package.id, carer.id, None)
    if carers:
        await staff_visits(admin, package, carers[0])
    return package


async def add_task(admin, package, carer, title: str = "Medication prompt") -> CareTask:
    """A task whose target has counted since the package started."""
    return await care.do_create_task(admin, package.id, TaskIn.model_validate({
        "carer_id": carer.id, "title": title, "target": 2, "period": "day"}), None,
        at=datetime.combine(package.starts_on, time(0), UTC))


async def events_of(user_id: int) -> list:
    return [d.event for d in await outbox.read_history(user_id, after=0)]


async def audits(action: str, **filters) -> list[dict]:
    return [json.loads(e.detail) for e in await AuditEntry.filter(action=action, **filters).order_by("seq")]


@pytest.fixture
async def team(database):
    admin, secret = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    carl = await make_user(Role.CARER, "carl@example.org", name="Carl Carer")
    return admin, secret, cara, carl


async def test_the_client_record_is_sealed_and_each_read_audited(team):
    admin, _, cara, _ = team
    package = await record_package(admin, cara)
    row = await CarePackage.get(id=package.id)
    for field, value in RECORD.items():
        assert value not in (getattr(row, field) or ""), field
    view = await care.get_package(cara, package.id, "10.0.0.7")
    assert {f: getattr(view, f) for f in RECORD} == RECORD
    [read] = await audits("phi.read", actor_id=cara.id, subject_id=str(package.id))
    assert sorted(read["fields"]) == sorted(RECORD)
    [written] = await audits("phi.write", subject_id=str(package.id))
    assert sorted(written["fields"]) == sorted(RECORD)


async def test_only_the_fields_given_change_and_dates_stay_in_order(team):
    admin, _, cara, _ = team
    package = await record_package(admin, cara, starts_on=date(2026, 3, 1))
    await care.do_update_package(admin, package.id, PackageChange.model_validate(
        {"allergies": "Penicillin; peanuts; latex", "address": None, "ends_on": "2026-06-30"}), None)
    view = await care.get_package(admin, package.id, None)
    assert view.allergies == "Penicillin; peanuts; latex" and view.address is None
    assert view.ends_on == date(2026, 6, 30)
    assert (view.client_name, view.gp_phone, view.access_notes) == (
        RECORD["client_name"], RECORD["gp_phone"], RECORD["access_notes"])
    assert (await audits("care.package_updated"))[-1]["fields"] == ["address", "allergies", "ends_on"]
    assert (await audits("phi.write", subject_id=str(package.id)))[-1]["fields"] == ["address", "allergies"]
    [event] = [e for e in await events_of(cara.id) if e.type == "care.package_updated"]
    assert event.data == {"package_id": package.id, "fields": ["address", "allergies", "ends_on"]}
    assert "Penicillin" not in json.dumps(event.data)  # events are not sealed: no client details
    with pytest.raises(ValidationError, match=r"ends \(2026-02-28\) before it starts \(2026-03-01\)"):
        await care.do_update_package(admin, package.id, PackageChange.model_validate({"ends_on": "2026-02-28"}), None)
    with pytest.raises(ValidationError, match=r"ends \(2026-06-30\) before it starts \(2026-07-01\)"):
        await care.do_update_package(admin, package.id, PackageChange.model_validate({"starts_on": "2026-07-01"}),
                                     None)


async def test_an_ended_package_leaves_the_carers_day_and_its_figures_stop(team, now):
    admin, _, cara, _ = team
    package = await record_package(admin, cara)
    task = await add_task(admin, package, cara)
    assert [t.task.id for t in (await care.carer_today(cara, None, at=now)).tasks] == [task.id]
    yesterday = now.date() - timedelta(days=1)
    with pytest.raises(ValidationError, match="before it starts"):
        await care.do_end_package(admin, package.id, PackageEnd(ends_on=LONG_AGO - timedelta(days=1)), None)
    await care.do_end_package(admin, package.id, PackageEnd(ends_on=yesterday), None)
    day = await care.carer_today(cara, None, at=now)
    assert day.tasks == []
    assert await visits.carer_visits(cara, None, at=now, late_after=timedelta(minutes=15)) == []
    [row] = await care.progress(admin, start=yesterday - timedelta(days=1), end=now.date() + timedelta(days=3),
                                package_id=package.id)
    assert row.expected == 2 * 2  # two a day, on the two days up to the end
    assert (await audits("care.package_ended"))[-1]["ends_on"] == yesterday.isoformat()
    ended = [e for e in await events_of(cara.id) if e.type == "care.package_ended"]
    assert [e.data for e in ended] == [{"package_id": package.id, "ends_on": yesterday.isoformat()}]


async def test_an_archived_package_is_hidden_from_its_carer_and_read_only(team):
    admin, _, cara, carl = team
    package = await record_package(admin, cara, starts_on=date(2026, 3, 1), ends_on=date(2026, 4, 30))
    task = await add_task(admin, package, cara)
    with pytest.raises(Conflict, match="still running \\(until 2026-04-30\\); end it first"):
        await care.do_archive_package(admin, package.id, None, at=EARLY)
    await care.do_update_package(admin, package.id, PackageChange(ends_on=EARLY.date()), None)
    assert await reminders.plan_visit_reminders(EARLY) == 1
    await care.do_archive_package(admin, package.id, None, at=EARLY)
    assert [j.status for j in await Job.filter(kind=reminders.REMIND)] == ["cancelled"]
    assert await reminders.plan_visit_reminders(EARLY) == 0
    assert [p.id for p, _ in await care.list_packages(admin, None)] == []
    assert [p.id for p, _ in await care.list_packages(admin, None, archived=True)] == [package.id]
    assert await care.list_packages(cara, None, archived=True) == []
    with pytest.raises(NotFound):
        await care.get_package(cara, package.id, None)
    with pytest.raises(NotFound):
        await care.do_log_completion(cara, task.id, CompletionIn(idempotency_key="after-archive"), at=EARLY)
    assert (await care.carer_today(cara, None, at=EARLY)).tasks == []
    assert (await care.get_package(admin, package.id, None)).archived_at == EARLY
    for change in (care.do_update_package(admin, package.id, PackageChange(allergies="none"), None),
                   care.do_assign_carer(admin, package.id, carl.id, None),
                   care.do_update_task(admin, task.id, TaskChange(target=1), None),
                   care.do_remove_carer(admin, package.id, cara.id, None, None)):
        with pytest.raises(Conflict, match="archived"):
            await change
    assert [e.type for e in await events_of(cara.id)][-1] == "care.package_archived"
    await care.do_unarchive_package(admin, package.id, None)
    assert (await care.get_package(cara, package.id, None)).tasks[0].id == task.id


async def test_a_task_goes_only_to_a_carer_on_the_package(team):
    admin, _, cara, carl = team
    package = await record_package(admin, cara)
    with pytest.raises(ValidationError, match="^Carl Carer is not on this package; add them first.$"):
        await add_task(admin, package, carl)
    task = await add_task(admin, package, cara)
    with pytest.raises(ValidationError, match="^Carl Carer is not on this package; add them first.$"):
        await care.do_update_task(admin, task.id, TaskChange(carer_id=carl.id), None)
    assert await CareTask.filter(carer_id=carl.id).count() == 0


async def test_removing_a_carer_hands_their_tasks_over_and_cancels_their_reminders(team):
    admin, _, cara, carl = team
    package = await record_package(admin, cara, carl)
    task = await add_task(admin, package, cara)
    assert await reminders.plan_visit_reminders(EARLY) == 1  # the 08:00 visit, Cara's on the rota
    outsider = await make_user(Role.CARER, "otto@example.org", name="Otto Carer")
    with pytest.raises(ValidationError, match="Otto Carer is not on this package"):
        await care.do_remove_carer(admin, package.id, cara.id, outsider.id, None)
    with pytest.raises(ValidationError, match="Cara Carer is the carer leaving"):
        await care.do_remove_carer(admin, package.id, cara.id, cara.id, None)
    assert await care.do_remove_carer(admin, package.id, cara.id, carl.id, None) == [task.id]
    await task.refresh_from_db()
    assert (task.carer_id, task.needs_carer) == (carl.id, False)
    # her visits went with her tasks, and so do the reminders once planned
    assert {e.carer_id for e in await care_rota.list_rota(admin, package.id)} == {carl.id}
    assert await reminders.plan_visit_reminders(EARLY) == 1
    jobs = {j.key.split(":")[2]: j.status for j in await Job.filter(kind=reminders.REMIND)}
    assert jobs == {str(cara.id): "cancelled", str(carl.id): "queued"}
    assert [e.type for e in await events_of(cara.id)][-3:] == ["task.removed", "visit.rota_changed",
                                                                "care.package_unassigned"]
    carl_events = (await events_of(carl.id))[-3:]
    assert [e.type for e in carl_events] == ["task.assigned", "visit.rota_changed", "care.carer_removed"]
    assert carl_events[2].data == {"package_id": package.id, "carer_id": cara.id, "carer_name": "Cara Carer",
                                   "tasks": 1, "tasks_to_name": "Carl Carer"}
    [audit] = await audits("care.carer_removed")
    assert audit == {"carer_id": cara.id, "tasks": [task.id], "tasks_to": carl.id, "needs_carer": False}
    with pytest.raises(NotFound):
        await care.get_package(cara, package.id, None)
    await care.do_log_completion(carl, task.id, CompletionIn(idempotency_key="carl-takes-over"), at=EARLY)
    with pytest.raises(NotFound, match=f"Carer {cara.id} is not assigned"):
        await care.do_remove_carer(admin, package.id, cara.id, None, None)


async def test_a_carer_removed_with_nobody_named_leaves_their_tasks_flagged(team):
    admin, _, cara, carl = team
    package = await record_package(admin, cara)
    task = await add_task(admin, package, cara)
    await care.do_remove_carer(admin, package.id, cara.id, None, None)
    await task.refresh_from_db()
    assert task.needs_carer and task.is_active
    assert [t.needs_carer for t in (await care.get_package(admin, package.id, None)).tasks] == [True]
    assert (await audits("care.carer_removed"))[-1]["needs_carer"] is True
    admin_line = [d for d in await outbox.read_history(admin.id, after=0) if d.event.type == "care.carer_removed"]
    assert feed.describe(admin_line[0], {admin.id: "Bo Boss"}) == (
        f"Bo Boss took Cara Carer off care package {package.id}; 1 task need a carer")
    # Put back on the package, she still cannot log it until an admin gives it to someone.
    await care.do_assign_carer(admin, package.id, cara.id, None)
    with pytest.raises(NotFound):
        await care.do_log_completion(cara, task.id, CompletionIn(idempotency_key="flagged-task"), at=EARLY)
    await care.do_assign_carer(admin, package.id, carl.id, None)
    await care.do_update_task(admin, task.id, TaskChange(carer_id=carl.id), None)
    await task.refresh_from_db()
    assert (task.carer_id, task.needs_carer) == (carl.id, False)
    assert [e.type for e in await events_of(carl.id)][-1] == "task.assigned"


async def test_replacing_a_carer_puts_the_replacement_on_with_their_tasks(team):
    admin, _, cara, carl = team
    package = await record_package(admin, cara)
    task = await add_task(admin, package, cara)
    assert await reminders.plan_visit_reminders(EARLY) == 1
    assert await care.do_replace_carer(admin, package.id, cara.id, carl.id, None) == [task.id]
    view = await care.get_package(admin, package.id, None)
    assert [c.full_name for c in view.carers] == ["Carl Carer"] and view.tasks[0].carer_id == carl.id
    assert [j.status for j in await Job.filter(kind=reminders.REMIND)] == ["cancelled"]
    assert [e.type for e in await events_of(carl.id)] == ["care.package_assigned", "task.assigned",
                                                         "visit.rota_changed", "care.carer_replaced"]
    assert {e.carer_id for e in await care_rota.list_rota(admin, package.id)} == {carl.id}
    [audit] = await audits("care.carer_replaced")
    assert audit == {"carer_id": cara.id, "replacement_id": carl.id, "tasks": [task.id]}
    line = [d for d in await outbox.read_history(admin.id, after=0) if d.event.type == "care.carer_replaced"]
    assert feed.describe(line[0], {admin.id: "Bo Boss"}) == (
        f"Bo Boss replaced Cara Carer with Carl Carer on care package {package.id}")


# --- through the app ---------------------------------------------------------------------------


async def test_the_carer_opens_the_client_page_from_their_day_and_another_carer_gets_404(app, client):
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    carl = await make_user(Role.CARER, "carl@example.org", name="Carl Carer")
    package = await record_package(admin, cara)
    await add_task(admin, package, cara)
    page_path = f"/carer/packages/{package.id}"
    await login(client, carl.email)
    for path in (page_path, f"{page_path}/live"):
        assert (await client.get(path)).status_code == 404, path
    await login(client, cara.email)
    dashboard = (await client.get("/carer")).text
    assert dashboard.count(f'href="{page_path}"') == 3  # two visits and the task row
    reads = await AuditEntry.filter(action="phi.read", actor_id=cara.id, subject_id=str(package.id)).count()
    page = await client.get(page_path)
    assert page.status_code == 200 and "<script>" not in page.text
    html = page.text
    assert html.index("Penicillin; peanuts") < html.index("Key safe by the back door")  # allergies first
    assert 'href="tel:07700900123"' in html and 'href="tel:+441134960000"' in html
    assert "Tom Marsh (son)" in html and "Mill Lane Surgery" in html and "Medication prompt" in html
    assert 'data-live-refresh="/carer/packages/' in html
    after = await AuditEntry.filter(action="phi.read", actor_id=cara.id, subject_id=str(package.id)).count()
    assert after == reads + 1
    assert (await client.get(f"{page_path}/live")).status_code == 200
    api = (await client.get(f"/api/v1/care/packages/{package.id}")).json()
    assert api["allergies"] == "Penicillin; peanuts" and api["next_of_kin_phone"] == "07700 900123"


async def test_the_admin_edits_ends_and_archives_over_the_api(app, client):
    admin, secret = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    carl = await make_user(Role.CARER, "carl@example.org", name="Carl Carer")
    package = await record_package(admin, cara, starts_on=date(2026, 3, 1))
    await login(client, admin.email, totp_secret=secret)
    headers = {"x-csrf-token": await csrf_token(client)}
    path = f"/api/v1/care/packages/{package.id}"
    changed = await client.patch(path, headers=headers, json={"gp_phone": "0113 496 0999", "access_notes": ""})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["gp_phone"] == "0113 496 0999" and body["access_notes"] is None
    assert body["allergies"] == RECORD["allergies"]
    for bad, words in (({"ends_on": "2026-02-01"}, "before it starts"), ({"client_name": None}, "cannot be cleared"),
                       ({"next_of_kin_phone": "call Tom"}, "next_of_kin_phone"), ({"colour": "red"}, "colour")):
        refused = await client.patch(path, headers=headers, json=bad)
        assert refused.status_code == 422 and words in refused.text, (bad, refused.text)
    assert (await client.patch("/api/v1/care/packages/99999", headers=headers, json={})).status_code == 404
    task = await client.post(f"{path}/tasks", headers=headers,
                             json={"carer_id": carl.id, "title": "Shopping", "target": 1, "period": "week"})
    assert task.status_code == 422 and "Carl Carer is not on this package; add them first" in task.text
    early = await client.post(f"{path}/archive", headers=headers)
    assert early.status_code == 409 and "end it first" in early.text
    ended = await client.post(f"{path}/end", headers=headers, json={"ends_on": "2026-03-15"})
    assert ended.status_code == 200 and ended.json()["ends_on"] == "2026-03-15"
    archived = await client.post(f"{path}/archive", headers=headers)
    assert archived.status_code == 200 and archived.json()["archived_at"]
    assert (await client.get("/api/v1/care/packages")).json() == {"packages": []}
    listed = (await client.get("/api/v1/care/packages?archived=true")).json()["packages"]
    assert [p["id"] for p in listed] == [package.id]
    assert (await client.patch(path, headers=headers, json={"allergies": "x"})).status_code == 409
    page = (await client.get(f"/admin/care/packages/{package.id}")).text
    assert 'id="archived-badge"' in page and "Save details" not in page and "Unarchive" in page
    assert (await client.post(f"{path}/unarchive", headers=headers)).json()["archived_at"] is None
    await login(client, cara.email)
    refused = await client.patch(path, headers={"x-csrf-token": await csrf_token(client)}, json={})
    assert refused.status_code == 403


async def test_the_admin_removes_and_replaces_carers_over_the_api_and_the_pages(app, client):
    admin, secret = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    carl = await make_user(Role.CARER, "carl@example.org", name="Carl Carer")
    dan = await make_user(Role.CARER, "dan@example.org", name="Dan Carer")
    package = await record_package(admin, cara, carl)
    task = await add_task(admin, package, cara)
    await login(client, admin.email, totp_secret=secret)
    headers = {"x-csrf-token": await csrf_token(client)}
    carers = f"/api/v1/care/packages/{package.id}/carers"
    wrong = await client.delete(f"{carers}/{cara.id}?tasks_to={dan.id}", headers=headers)
    assert wrong.status_code == 422 and "Dan Carer is not on this package" in wrong.text
    assert (await client.delete(f"{carers}/{dan.id}", headers=headers)).status_code == 404
    moved = await client.delete(f"{carers}/{cara.id}?tasks_to={carl.id}", headers=headers)
    assert moved.status_code == 204
    assert (await CareTask.get(id=task.id)).carer_id == carl.id
    replaced = await client.post(f"{carers}/{carl.id}/replacement", headers=headers, json={"carer_id": dan.id})
    assert replaced.status_code == 204
    assert (await CareTask.get(id=task.id)).carer_id == dan.id
    # The page's form: CSRF-checked, then Dan leaves with nobody named, and his task is flagged.
    form = f"/admin/care/packages/{package.id}/carers/{dan.id}/remove"
    assert (await client.post(form, data={"tasks_to": ""})).status_code == 403
    token = await csrf_token(client, f"/admin/care/packages/{package.id}")
    done = await client.post(form, data={"tasks_to": "", "action": "remove", "csrf_token": token})
    assert done.status_code == 303
    page = (await client.get(f"/admin/care/packages/{package.id}")).text
    assert "needs a carer" in page and "Nobody assigned yet." in page
    edit = await client.post(f"/admin/care/packages/{package.id}", data={
        "csrf_token": token, "client_name": "Mrs Edna Marsh", "starts_on": "2025-01-01", "ends_on": "2024-01-01"})
    assert edit.status_code == 422 and "before it starts" in edit.text
    openapi = (await client.get("/api/v1/openapi.json")).json()["paths"]
    assert {"patch"} <= set(openapi["/api/v1/care/packages/{package_id}"])
    assert "delete" in openapi["/api/v1/care/packages/{package_id}/carers/{carer_id}"]
    assert "post" in openapi["/api/v1/care/packages/{package_id}/carers/{carer_id}/replacement"]
