"""Logging tasks on the client's clock (Europe/London, across the 2026 clock changes), on SQLite
and PostgreSQL: the carer's day and windows, the log form's time, visit reminders, early logs
(refused or marked), taps sent late keeping their moment, and missed tasks reported within a
minute of the window closing, telling "not done (reason)" from "missed (nothing logged)"."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from tortoise.backends.asyncpg.client import AsyncpgDBClient
from tortoise.backends.sqlite.client import SqliteClient

from caretrack.care import jobs as care_jobs  # noqa: F401  (registers care.check_missed)
from caretrack.care import service as care
from caretrack.care import zones
from caretrack.care.models import CarePackage, CareTask, MissedTask, TaskCompletion
from caretrack.care.pages import _form_time
from caretrack.care.schemas import CompletionIn, PackageIn, TaskIn
from caretrack.care.service import reminders, visits
from caretrack.core.audit.models import AuditEntry
from caretrack.core.errors import ValidationError
from caretrack.core.outbox import store as outbox
from caretrack.core.outbox.models import Event
from caretrack.core.queue import Runner
from caretrack.core.queue.models import Job
from caretrack.core.queue.registry import HANDLERS
from caretrack.core.roles import Role
from caretrack.realtime import feed
from tests.care.helpers import LONG_AGO, admin_user, staff_visits
from tests.helpers import csrf_token, login, make_user

# The pinned instants (tests/conftest.py PINNED_INSTANTS) that matter on London's clock.
SPRING_0500Z = datetime(2026, 3, 29, 5, 0, tzinfo=UTC)  # 06:00 BST, the morning the clocks went forward
AUTUMN_0030Z = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 01:30 BST, the first of two 01:30s
SUMMER_2359Z = datetime(2026, 6, 30, 23, 59, tzinfo=UTC)  # 00:59 BST on 1 July


async def london_task(admin, carer, *, title: str = "Medication prompt", window: tuple[str, str] = ("07:30", "10:00"),
                      target: int = 1, visit_times: str = "08:00", client_name: str = "Mrs Iris Client",
                      created_at: datetime | None = None, staffed: bool = False) -> tuple[CarePackage, CareTask]:
    """A London package and a task for `carer`; `staffed` gives them its visits on the rota too."""
    package = await care.do_create_package(admin, PackageIn.model_validate({
        "client_name": client_name, "starts_on": LONG_AGO.isoformat(), "visit_times": visit_times,
        "time_zone": "Europe/London"}), None)
    await care.do_assign_carer(admin, package.id, carer.id, None)
    if staffed:
        await staff_visits(admin, package, carer)
    task = await care.do_create_task(admin, package.id, TaskIn.model_validate({
        "carer_id": carer.id, "title": title, "target": target, "period": "day",
        "window_start": window[0], "window_end": window[1]}), None)
    if created_at is not None:
        await CareTask.filter(id=task.id).update(created_at=created_at)
        await task.refresh_from_db()
    return package, task


@pytest.fixture
async def people(database):
    admin, secret = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")  # her own zone: UTC
    return admin, secret, cara


# --- 1. the carer's day on the package's clock ---------------------------------------------------


@pytest.mark.parametrize(("at", "window", "state", "day"), [
    # 06:00 BST: a 06:00-07:00 window is open (read as UTC, 05:00, it would not have opened)
    (SPRING_0500Z, ("06:00", "07:00"), "open", "2026-03-29"),
    # 00:59 BST on 1 July: the new day's 00:30-02:00 window is open (UTC: 23:59 on 30 June, closed)
    (SUMMER_2359Z, ("00:30", "02:00"), "open", "2026-07-01"),
    # the first 01:30 BST on 25 October: 01:00-02:00 open (UTC 00:30: not yet)
    (AUTUMN_0030Z, ("01:00", "02:00"), "open", "2026-10-25"),
    (AUTUMN_0030Z, ("02:00", "03:00"), "upcoming", "2026-10-25"),
    (SPRING_0500Z, ("00:00", "06:00"), "closed", "2026-03-29"),
])
async def test_the_carers_day_and_windows_are_on_the_packages_clock(people, at, window, state, day):
    admin, _, cara = people
    package, task = await london_task(admin, cara, window=window, staffed=True)
    today = await care.carer_today(cara, None, at=at)
    assert today.day.isoformat() == day
    [progress] = today.tasks
    assert progress.window_state == state
    assert today.time_zones == {package.id: "Europe/London"}
    day_visits = await visits.carer_visits(cara, None, at=at, late_after=timedelta(minutes=15))
    assert [(v.occurrence.time, v.client_name, v.occurrence.package.id) for v in day_visits] == [
        ("08:00", "Mrs Iris Client", package.id)]


async def test_a_package_starting_tomorrow_in_utc_is_already_running_in_london(people):
    admin, _, cara = people
    package = await care.do_create_package(admin, PackageIn.model_validate({
        "client_name": "Mr New", "starts_on": "2026-07-01", "time_zone": "Europe/London"}), None)
    await care.do_assign_carer(admin, package.id, cara.id, None)
    assert package.id in (await care.carer_today(cara, None, at=SUMMER_2359Z)).time_zones
    assert package.id not in (await care.carer_today(cara, None, at=SUMMER_2359Z - timedelta(hours=1))).time_zones


@contextlib.contextmanager
def counting_queries() -> Iterator[list[str]]:
    """Every statement sent to the database while inside (both backends' clients)."""
    seen: list[str] = []
    patches = []
    for cls in (SqliteClient, AsyncpgDBClient):
        for name in ("execute_query", "execute_query_dict", "execute_insert"):
            original = getattr(cls, name)

            def wrapper(self, sql, *args, _original=original, **kwargs):
                seen.append(sql)
                return _original(self, sql, *args, **kwargs)

            patches.append((cls, name, original))
            setattr(cls, name, wrapper)
    try:
        yield seen
    finally:
        for cls, name, original in patches:
            setattr(cls, name, original)


async def test_the_carers_day_takes_as_many_queries_for_many_tasks_as_for_one(people):
    admin, _, cara = people
    package, _ = await london_task(admin, cara)
    with counting_queries() as one:
        await care.carer_today(cara, None, at=SPRING_0500Z)
    for title in ("Fluids", "Lunch", "Walk"):
        await care.do_create_task(admin, package.id, TaskIn.model_validate({
            "carer_id": cara.id, "title": title, "target": 2, "period": "day"}), None)
    await london_task(admin, cara, title="Second client's meds", client_name="Mr Other")
    with counting_queries() as many:
        today = await care.carer_today(cara, None, at=SPRING_0500Z)
    assert len(today.tasks) == 5
    assert len(many) == len(one)


# --- the log form's time and its label -------------------------------------------------------


@pytest.mark.parametrize(("at", "entered", "expected"), [
    # 23:50 entered at 01:10 BST on 25 October: last night's 23:50 BST
    (datetime(2026, 10, 25, 0, 10, tzinfo=UTC), "23:50", datetime(2026, 10, 24, 22, 50, tzinfo=UTC)),
    # 01:30 entered after the clocks went back: the first 01:30 (BST)
    (datetime(2026, 10, 25, 2, 0, tzinfo=UTC), "01:30", datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
    # 05:30 on the spring morning is 04:30 UTC (BST began at 01:00 UTC)
    (SPRING_0500Z, "05:30", datetime(2026, 3, 29, 4, 30, tzinfo=UTC)),
    # later than now (beyond the 5 minutes' grace): yesterday's, on yesterday's offset (GMT)
    (SPRING_0500Z, "06:30", datetime(2026, 3, 28, 6, 30, tzinfo=UTC)),
    # 00:59 BST on 1 July: 00:10 is tonight, 23:50 last night (still 30 June in London)
    (SUMMER_2359Z, "00:10", datetime(2026, 6, 30, 23, 10, tzinfo=UTC)),
    (SUMMER_2359Z, "23:50", datetime(2026, 6, 30, 22, 50, tzinfo=UTC)),
])
def test_the_forms_time_is_its_latest_occurrence_on_the_packages_clock(at, entered, expected):
    assert _form_time(entered, at, CarePackage(time_zone="Europe/London")) == expected


async def test_the_dashboard_labels_the_time_with_the_zone_and_the_form_logs_on_it(app, client):
    at = datetime(2026, 10, 25, 0, 10, tzinfo=UTC)  # 01:10 BST
    app.state.clock = lambda: at
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    _, task = await london_task(admin, cara, window=("00:00", "24:00"))
    await login(client, cara.email)
    page = (await client.get("/carer")).text
    assert f'<label for="time-{task.id}">Time (Europe/London)' in page
    assert 'data-time-zone="Europe/London"' in page
    response = await client.post(f"/carer/tasks/{task.id}/log", data={
        "csrf_token": await csrf_token(client, "/carer"), "key": "form-key-0001", "time": "23:50",
        "reason": "Client declined"})
    assert response.status_code == 303
    [logged] = await TaskCompletion.filter(task_id=task.id)
    assert logged.occurred_at == datetime(2026, 10, 24, 22, 50, tzinfo=UTC)
    history = (await client.get(f"/carer/tasks/{task.id}")).text
    assert "2026-10-24 23:50 (Europe/London)" in history


# --- visit reminders on the package's clock --------------------------------------------------


async def test_visit_reminders_are_planned_on_the_packages_clock(people):
    admin, _, cara = people
    package, _ = await london_task(admin, cara, visit_times="08:00", staffed=True)
    assert await reminders.plan_visit_reminders(SPRING_0500Z) == 1
    [job] = await Job.filter(kind=reminders.REMIND)
    # 08:00 BST on 29 March is 07:00 UTC: reminded at 06:30 UTC, not 07:30
    assert job.due_at == datetime(2026, 3, 29, 6, 30, tzinfo=UTC)
    assert json.loads(job.payload)["day"] == "2026-03-29"
    # at 23:59 UTC on 30 June it is already 1 July in London: the 00:20 visit is 23:20 UTC on the 30th, passed
    assert zones.instant(package, datetime(2026, 7, 1).date(), 20) == datetime(2026, 6, 30, 23, 20, tzinfo=UTC)


# --- 2. a tap sent late keeps its moment ---------------------------------------------------------


async def test_a_tap_queued_offline_and_sent_later_keeps_its_time(app, client):
    tapped = datetime(2026, 3, 29, 7, 0, tzinfo=UTC)  # 08:00 BST, in the window
    app.state.clock = lambda: tapped + timedelta(hours=3)  # the phone got its signal back at 11:00
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    _, task = await london_task(admin, cara, window=("07:30", "10:00"))
    await login(client, cara.email)
    headers = {"x-csrf-token": await csrf_token(client)}
    body = {"idempotency_key": "offline-tap-0001", "occurred_at": tapped.isoformat()}
    first = await client.post(f"/api/v1/care/tasks/{task.id}/completions", headers=headers, json=body)
    assert first.status_code == 201 and first.json()["occurred_at"] == "2026-03-29T07:00:00Z"
    assert first.json()["early"] is False
    # the answer was lost: the phone sends it again later, with the same key and moment
    app.state.clock = lambda: tapped + timedelta(hours=5)
    again = await client.post(f"/api/v1/care/tasks/{task.id}/completions", headers=headers, json=body)
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert again.json()["id"] == first.json()["id"] and again.json()["occurred_at"] == "2026-03-29T07:00:00Z"
    assert (await TaskCompletion.get(task_id=task.id)).occurred_at == tapped
    # a tap kept more than 7 days is refused, naming the rule
    app.state.clock = lambda: tapped + timedelta(days=7, minutes=1)
    stale = await client.post(f"/api/v1/care/tasks/{task.id}/completions", headers=headers,
                              json={"idempotency_key": "offline-tap-0002", "occurred_at": tapped.isoformat()})
    assert stale.status_code == 422 and "more than 7 days ago" in stale.text
    assert await TaskCompletion.filter(task_id=task.id).count() == 1


# --- 3. early logs ---------------------------------------------------------------------------


async def test_an_early_done_is_refused_naming_the_window_by_default(app, client):
    app.state.clock = lambda: SPRING_0500Z  # 06:00 BST
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    _, task = await london_task(admin, cara, window=("07:30", "10:00"))
    await login(client, cara.email)
    headers = {"x-csrf-token": await csrf_token(client)}
    refused = await client.post(f"/api/v1/care/tasks/{task.id}/completions", headers=headers,
                                json={"idempotency_key": "early-key-0001"})
    assert refused.status_code == 422
    assert refused.json()["error"]["message"] == ("The window for “Medication prompt” opens at 07:30 "
                                                  "(Europe/London).")
    page = await client.post(f"/carer/tasks/{task.id}/log", data={
        "csrf_token": await csrf_token(client, "/carer"), "key": "early-key-0002"})
    assert page.status_code == 422 and "opens at 07:30 (Europe/London)" in page.text
    # not done before the window is fine: it says why nothing happened
    declined = await client.post(f"/api/v1/care/tasks/{task.id}/completions", headers=headers, json={
        "idempotency_key": "early-key-0003", "status": "not_done", "reason": "Client declined"})
    assert declined.status_code == 201
    assert [c.status for c in await TaskCompletion.filter(task_id=task.id)] == ["not_done"]


async def test_in_the_window_on_londons_clock_is_not_early_though_utc_says_otherwise(people):
    admin, _, cara = people
    _, task = await london_task(admin, cara, window=("07:30", "10:00"))
    at = datetime(2026, 3, 29, 6, 45, tzinfo=UTC)  # 07:45 BST
    completion, _ = await care.do_log_completion(cara, task.id, CompletionIn(idempotency_key="in-window-1"), at=at)
    assert completion.early is False
    with pytest.raises(ValidationError, match="opens at 07:30"):
        await care.do_log_completion(cara, task.id, CompletionIn(idempotency_key="in-window-2"),
                                     at=at - timedelta(minutes=16))  # 07:29 BST


async def test_a_marked_early_done_is_kept_shown_and_not_counted(app, client):
    app.state.clock = lambda: SPRING_0500Z  # 06:00 BST
    app.state.settings = app.state.settings.replace(care_early_logs="mark")
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    _, task = await london_task(admin, cara, window=("07:30", "10:00"))
    await login(client, cara.email)
    headers = {"x-csrf-token": await csrf_token(client)}
    early = await client.post(f"/api/v1/care/tasks/{task.id}/completions", headers=headers,
                              json={"idempotency_key": "early-mark-01"})
    assert early.status_code == 201 and early.json()["early"] is True
    assert (await TaskCompletion.get(task_id=task.id)).early is True
    today = (await client.get("/api/v1/care/today")).json()
    assert today["tasks"][0]["done"] == 0 and today["tasks"][0]["time_zone"] == "Europe/London"
    day = SPRING_0500Z.date()
    assert await care.done_counts([task.id], day, day) == {}
    assert await care.daily_done([task.id], day, day) == [(day, 0)]
    # the carer's history says so
    history = (await client.get(f"/carer/tasks/{task.id}")).text
    assert ">early</span>" in history and "2026-03-29 06:00 (Europe/London)" in history
    # and so does the admins' feed
    [event] = [d for d in await outbox.read_history(admin.id, after=0) if d.event.type == "task.completed"]
    assert event.event.data["early"] is True
    line = feed.describe(event, await feed.names_for([event]))
    assert line == "Cara Carer completed the task “Medication prompt” — early, before its window opened: not counted"
    # a correction of an early log stays early
    fixed, _ = await care.do_correct_completion(cara, early.json()["id"], CompletionIn(
        idempotency_key="early-mark-02", note="Given with breakfast"), at=SPRING_0500Z, early_logs="mark")
    assert fixed.early is True and await care.done_counts([task.id], day, day) == {}


# --- 4. missed tasks within a minute, on the package's clock ---------------------------------


def check_runner(settings) -> Runner:
    return Runner("test", settings, handlers={"care.check_missed": HANDLERS["care.check_missed"]})


async def test_a_window_closing_is_reported_missed_within_the_minute_naming_carer_and_client(people, database):
    admin, _, cara = people
    # 06:00-07:00 on London's clock is 05:00-06:00 UTC on the spring morning
    _, task = await london_task(admin, cara, window=("06:00", "07:00"),
                                created_at=datetime(2026, 3, 29, 4, 0, tzinfo=UTC))
    runner = check_runner(database)
    await runner.run_due(at=datetime(2026, 3, 29, 5, 59, tzinfo=UTC))  # 06:59 BST: still open
    assert not await MissedTask.exists(task_id=task.id)
    await runner.run_due(at=datetime(2026, 3, 29, 6, 0, 0, 400000, tzinfo=UTC))  # 07:00 BST, the next tick
    miss = await MissedTask.get(task_id=task.id)
    assert (miss.on_date.isoformat(), miss.done, miss.target, miss.reason) == ("2026-03-29", 0, 1, None)
    await runner.run_due(at=datetime(2026, 3, 29, 6, 1, tzinfo=UTC))
    assert await MissedTask.filter(task_id=task.id).count() == 1  # recorded once
    [event] = [d for d in await outbox.read_history(admin.id, after=0) if d.event.type == "task.missed"]
    assert event.event.data["carer_name"] == "Cara Carer" and event.event.data["client"] == "I. C."
    assert event.event.data["outcome"] == "missed" and event.event.data["closed_at"] == "2026-03-29T06:00:00+00:00"
    assert feed.describe(event, {}) == ("The task “Medication prompt” for I. C. was missed on 2026-03-29 by "
                                        "Cara Carer: nothing logged")
    # the carer hears of it too; the client's name is not in event data at rest, and unsealing it is audited
    assert [d.event.type for d in await outbox.read_history(cara.id, after=0)][-1] == "task.missed"
    assert not [row for row in await Event.all() if "Iris" in row.data]
    assert await AuditEntry.filter(action="phi.read", actor_id=None, subject_type="care_package").exists()


async def test_not_done_with_a_reason_is_its_own_line_not_a_miss_by_the_carer(people):
    admin, _, cara = people
    created = datetime(2026, 10, 24, 20, 0, tzinfo=UTC)
    # 01:00-02:00 on the day the clocks go back: from the first 01:00 (BST, 00:00 UTC) to 02:00 GMT,
    # two hours long
    _, declined = await london_task(admin, cara, window=("01:00", "02:00"), created_at=created)
    _, partly = await london_task(admin, cara, title="Fluids", window=("01:00", "02:00"), target=2,
                                  client_name="Mr Ted Other", created_at=created)
    tap = datetime(2026, 10, 25, 0, 10, tzinfo=UTC)  # 01:10 BST
    await care.do_log_completion(cara, declined.id, CompletionIn(
        idempotency_key="declined-0001", status="not_done", reason="Client declined"), at=tap)
    await care.do_log_completion(cara, partly.id, CompletionIn(idempotency_key="partly-0001"), at=tap)
    assert await care.check_missed(AUTUMN_0030Z) == 0  # the first 01:30
    assert await care.check_missed(datetime(2026, 10, 25, 1, 59, tzinfo=UTC)) == 0  # 01:59 GMT
    assert await care.check_missed(datetime(2026, 10, 25, 2, 0, tzinfo=UTC)) == 2  # 02:00 GMT: closed
    reasons = {m.task_id: (m.reason, m.done, m.target) for m in await MissedTask.all()}
    assert reasons == {declined.id: ("Client declined", 0, 1), partly.id: (None, 1, 2)}
    lines = sorted(feed.describe(d, {}) for d in await outbox.read_history(admin.id, after=0)
                   if d.event.type == "task.missed")
    assert lines == [
        "The task “Fluids” for T. O. was missed on 2026-10-25 by Cara Carer: 1 of 2 done, nothing logged for the rest",
        "The task “Medication prompt” for I. C. was not done on 2026-10-25: Client declined (logged by Cara Carer)",
    ]


async def test_a_correction_to_not_done_counts_as_the_reason(people):
    admin, _, cara = people
    _, task = await london_task(admin, cara, window=("06:00", "07:00"),
                                created_at=datetime(2026, 3, 29, 4, 0, tzinfo=UTC))
    done, _ = await care.do_log_completion(cara, task.id, CompletionIn(idempotency_key="corr-0001"),
                                           at=datetime(2026, 3, 29, 5, 10, tzinfo=UTC))
    await care.do_correct_completion(cara, done.id, CompletionIn(
        idempotency_key="corr-0002", status="not_done", reason="Supplies ran out"),
        at=datetime(2026, 3, 29, 5, 20, tzinfo=UTC))
    assert await care.check_missed(datetime(2026, 3, 29, 6, 0, tzinfo=UTC)) == 1
    assert (await MissedTask.get(task_id=task.id)).reason == "Supplies ran out"


async def test_the_missed_check_takes_as_many_queries_for_many_tasks_as_for_one(people):
    admin, _, cara = people
    at = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)  # yesterday's and today's windows have closed
    created = datetime(2026, 3, 20, tzinfo=UTC)

    async def done_task(n: int) -> None:
        _, task = await london_task(admin, cara, title=f"Task {n}", client_name=f"Client {n}", created_at=created)
        for day in (28, 29):
            await care.do_log_completion(cara, task.id, CompletionIn(idempotency_key=f"t{n}-{day}-key"),
                                         at=datetime(2026, 3, day, 8, 0, tzinfo=UTC))

    await done_task(0)
    with counting_queries() as one:
        assert await care.check_missed(at) == 0
    for n in range(1, 5):
        await done_task(n)
    with counting_queries() as many:
        assert await care.check_missed(at) == 0
    assert len(many) == len(one)
