"""Competence gates: a task may need a skill. Assigning it to a carer who does not hold that
skill current is allowed and warns the admin (service, API and page); the carer's day and the
office's package page show the task as blocked, with why; the carer's day reads the gates in a
fixed number of queries however many tasks need a skill. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tortoise.backends.sqlite.client import SqliteClient

from caretrack.assessments.models import Competency, Skill
from caretrack.care import service as care
from caretrack.care.models import CareTask
from caretrack.care.schemas import TaskChange, TaskIn
from caretrack.core.roles import Role
from tests.care.helpers import admin_user, package_with_task
from tests.helpers import csrf_token, login, make_user

AT = datetime(2026, 11, 25, 23, 59, tzinfo=UTC)  # a minute to midnight UTC
EXPIRED = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


async def held(carer, skill: Skill, expires_at: datetime) -> Competency:
    return await Competency.create(carer_id=carer.id, skill_id=skill.id, level=90,
                                   achieved_at=expires_at - timedelta(days=365), expires_at=expires_at)


def task_in(carer, skill: Skill | None, title: str = "Medication round") -> TaskIn:
    return TaskIn.model_validate({"carer_id": carer.id, "title": title, "target": 1, "period": "day",
                                  "required_skill_id": skill.id if skill else None})


async def test_a_task_needing_a_skill_warns_and_blocks_until_the_carer_holds_it(database):
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    carl = await make_user(Role.CARER, "carl@example.org", name="Carl Carer")
    meds = await Skill.create(name="Medication")
    package, _ = await package_with_task(admin, cara, title="Shopping")
    task = await care.do_create_task(admin, package.id, task_in(cara, meds), None)
    assert task.required_skill_id == meds.id
    assert await care.task_warnings(task, AT) == [
        "Saved, but Cara Carer cannot do “Medication round” yet. Needs Medication competency — not assessed yet."]
    day = await care.carer_today(cara, None, at=AT)
    assert {p.task.title: p.blocked for p in day.tasks} == {
        "Shopping": None, "Medication round": "Needs Medication competency — not assessed yet"}

    await held(cara, meds, EXPIRED)
    assert (await care.blocked_tasks([(task.id, cara.id, meds.id)], AT)) == {
        task.id: "Needs Medication competency — expired on 2026-11-20"}
    await Competency.filter(carer_id=cara.id).update(expires_at=AT + timedelta(days=10))  # renewed
    assert await care.task_warnings(task, AT) == []
    assert all(p.blocked is None for p in (await care.carer_today(cara, None, at=AT)).tasks)
    # due for renewal is still current: not blocked until it lapses
    assert await care.blocked_tasks([(task.id, cara.id, meds.id)], AT + timedelta(days=10)) == {
        task.id: "Needs Medication competency — expired on 2026-12-05"}

    await care.do_assign_carer(admin, package.id, carl.id, None)
    moved = await care.do_update_task(admin, task.id, TaskChange(carer_id=carl.id), None)
    assert await care.task_warnings(moved, AT) == [
        "Saved, but Carl Carer cannot do “Medication round” yet. Needs Medication competency — not assessed yet."]
    kept = await care.do_update_task(admin, task.id, TaskChange(target=2), None)  # skill left out: unchanged
    assert kept.required_skill_id == meds.id
    cleared = await care.do_update_task(admin, task.id, TaskChange.model_validate({"required_skill_id": None}), None)
    assert cleared.required_skill_id is None and await care.task_warnings(cleared, AT) == []
    ended = await care.do_update_task(admin, task.id, TaskChange.model_validate(
        {"required_skill_id": meds.id, "is_active": False}), None)
    assert await care.task_warnings(ended, AT) == []


async def test_the_api_returns_warnings_and_names_an_unknown_skill(app, client):
    app.state.clock = lambda: AT
    admin, secret = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    meds = await Skill.create(name="Medication")
    await held(cara, meds, EXPIRED)
    package, task = await package_with_task(admin, cara)
    await login(client, admin.email, totp_secret=secret)
    headers = {"x-csrf-token": await csrf_token(client)}
    created = await client.post(f"/api/v1/care/packages/{package.id}/tasks", headers=headers, json={
        "carer_id": cara.id, "title": "Insulin", "target": 1, "period": "day", "required_skill_id": meds.id})
    assert created.status_code == 201, created.text
    assert created.json()["required_skill_id"] == meds.id
    assert created.json()["warnings"] == [
        "Saved, but Cara Carer cannot do “Insulin” yet. Needs Medication competency — expired on 2026-11-20."]
    plain = await client.patch(f"/api/v1/care/tasks/{task.id}", headers=headers, json={"target": 2})
    assert plain.json()["warnings"] == [] and plain.json()["required_skill_id"] is None
    gated = await client.patch(f"/api/v1/care/tasks/{task.id}", headers=headers, json={"required_skill_id": meds.id})
    assert len(gated.json()["warnings"]) == 1
    unknown = await client.patch(f"/api/v1/care/tasks/{task.id}", headers=headers, json={"required_skill_id": 99999})
    assert unknown.status_code == 422 and "no skill with id 99999" in unknown.json()["error"]["message"]
    cleared = await client.patch(f"/api/v1/care/tasks/{task.id}", headers=headers, json={"required_skill_id": None})
    assert cleared.json()["required_skill_id"] is None and cleared.json()["warnings"] == []
    document = (await client.get("/api/v1/openapi.json")).json()
    assert "warnings" in document["components"]["schemas"]["TaskSaved"]["required"]
    assert "required_skill_id" in document["components"]["schemas"]["TaskIn"]["properties"]

    await login(client, "cara@example.org")
    today = (await client.get("/api/v1/care/today")).json()
    assert {t["task"]["title"]: t["blocked"] for t in today["tasks"]} == {
        "Medication prompt": None, "Insulin": "Needs Medication competency — expired on 2026-11-20"}


async def test_the_pages_offer_the_skill_warn_after_saving_and_show_blocked_tasks(app, client):
    app.state.clock = lambda: AT
    admin, secret = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    meds = await Skill.create(name="Medication")
    package, task = await package_with_task(admin, cara, title="Shopping")
    await login(client, admin.email, totp_secret=secret)
    page = await client.get(f"/admin/care/packages/{package.id}")
    assert f'<option value="{meds.id}">Medication</option>' in page.text
    token = await csrf_token(client, f"/admin/care/packages/{package.id}")
    saved = await client.post(f"/admin/care/packages/{package.id}/tasks", data={
        "csrf_token": token, "carer_id": str(cara.id), "title": "Medication round", "target": "1", "period": "day",
        "window_start": "08:00", "window_end": "10:00", "required_skill_id": str(meds.id)})
    assert saved.status_code == 200, saved.text[:500]
    assert 'class="flash flash-warning"' in saved.text
    assert "Cara Carer cannot do “Medication round” yet. Needs Medication competency — not assessed yet." in saved.text
    gated = await CareTask.get(title="Medication round")
    assert gated.required_skill_id == meds.id
    page = (await client.get(f"/admin/care/packages/{package.id}")).text
    assert "· needs Medication" in page and page.count('<span class="badge bad">blocked</span>') == 1
    assert "1 task(s) blocked: the carer does not hold a competency the task needs." in page
    assert f'<option value="{meds.id}" selected>Medication</option>' in page

    plain = await client.post(f"/admin/care/tasks/{task.id}", data={"csrf_token": token, "target": "2",
                                                                    "required_skill_id": ""})
    assert plain.status_code == 303  # nothing to warn of: back to the package
    cleared = await client.post(f"/admin/care/tasks/{gated.id}", data={"csrf_token": token, "required_skill_id": ""})
    assert cleared.status_code == 303 and (await CareTask.get(id=gated.id)).required_skill_id is None
    regated = await client.post(f"/admin/care/tasks/{gated.id}", data={"csrf_token": token,
                                                                      "required_skill_id": str(meds.id)})
    assert regated.status_code == 200 and "flash-warning" in regated.text
    bad = await client.post(f"/admin/care/tasks/{gated.id}", data={"csrf_token": token, "required_skill_id": "x"})
    assert bad.status_code == 422 and "required_skill_id" in bad.text

    await login(client, "cara@example.org")
    today = (await client.get("/carer/today")).text
    assert today.count('<span class="badge bad">blocked</span>') == 1
    assert "Needs Medication competency — not assessed yet. Speak to the office before doing this task." in today


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # counted on SQLite's client
async def test_the_carers_day_reads_the_gates_in_a_fixed_number_of_queries(database, monkeypatch):
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    skills = [await Skill.create(name=n) for n in ("Medication", "Hoisting", "Catheter care", "PEG feeding")]
    await held(cara, skills[1], EXPIRED)
    package, _ = await package_with_task(admin, cara, title="Shopping")
    queries: list[str] = []
    for name in ("execute_query", "execute_query_dict"):
        original = getattr(SqliteClient, name)

        async def counted(self, query, values=None, _original=original):
            queries.append(query)
            return await _original(self, query, values)
        monkeypatch.setattr(SqliteClient, name, counted)

    async def count_today() -> tuple[int, dict[str, str | None]]:
        queries.clear()
        day = await care.carer_today(cara, None, at=AT)
        return len(queries), {p.task.title: p.blocked for p in day.tasks}

    await care.do_create_task(admin, package.id, task_in(cara, skills[0], "Task 0"), None)
    one, blocked = await count_today()
    assert blocked["Task 0"] == "Needs Medication competency — not assessed yet"
    for i, skill in enumerate(skills[1:], start=1):
        await care.do_create_task(admin, package.id, task_in(cara, skill, f"Task {i}"), None)
    four, blocked = await count_today()
    assert blocked["Task 1"] == "Needs Hoisting competency — expired on 2026-11-20" and len(blocked) == 5
    assert one > 0 and four == one, queries
