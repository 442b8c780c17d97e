"""The rota and visits on SQLite and PostgreSQL: clashes compared in real instants across zones,
visits planned per day for the figures, check-in and check-out (once, located, sealed), the
states of a day's visits, and late and missed alerts raised once by the job runner at pinned
instants, across London's spring-forward day; the legacy visit times migrated into the rota."""

from __future__ import annotations

import importlib
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
from pydantic import ValidationError as PydanticValidationError
from tortoise import connections

from caretrack.care import jobs as care_jobs  # noqa: F401  (registers the visit jobs)
from caretrack.care import service as care
from caretrack.care.models import CarePackage, PackageCarer, RotaEntry, Visit
from caretrack.care.schemas import PackageChange, PackageIn, TaskIn
from caretrack.care.service import rota, visit_alerts, visits
from caretrack.care.visit_schemas import RotaEntryChange, RotaEntryIn, VisitCheck
from caretrack.core.audit.models import AuditEntry
from caretrack.core.errors import Conflict, NotFound, ValidationError
from caretrack.core.outbox import store as outbox
from caretrack.core.queue import Runner
from caretrack.core.queue.models import Job
from caretrack.core.queue.registry import HANDLERS
from caretrack.core.roles import Role
from tests.care.helpers import LONG_AGO, admin_user
from tests.helpers import csrf_token, login, make_user

LATE = timedelta(minutes=15)
# Sunday 29 March 2026: London's clocks go forward at 01:00 UTC (01:00 GMT becomes 02:00 BST).
SPRING = date(2026, 3, 29)
WINTER = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)


async def package(admin, *carers, zone: str = "Europe/London", starts_on: date = LONG_AGO,
                  ends_on: date | None = None, name: str = "Mrs Iris Client") -> CarePackage:
    created = await care.do_create_package(admin, PackageIn.model_validate({
        "client_name": name, "address": "1 High Street", "starts_on": starts_on.isoformat(),
        "ends_on": ends_on.isoformat() if ends_on else None, "time_zone": zone}), None)
    for carer in carers:
        await care.do_assign_carer(admin, created.id, carer.id, None)
    return created


async def add(admin, package_id: int, carer_id: int | None, start: str, length: int = 30,
              weekdays: object = "1234567", at: datetime = WINTER):
    return await rota.do_add_visit(admin, package_id, RotaEntryIn.model_validate({
        "carer_id": carer_id, "weekdays": weekdays, "start": start, "length": length}), None, at=at)


@pytest.fixture
async def people(database):
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    uma = await make_user(Role.CARER, "uma@example.org", name="Uma Carer")
    return admin, cara, uma


async def events(user_id: int) -> list:
    """The user's visit events, rota changes left out."""
    return [d.event for d in await outbox.read_history(user_id, after=0, limit=500)
            if d.event.type.startswith("visit.") and d.event.type != "visit.rota_changed"]


# --- the rota --------------------------------------------------------------------------------


async def test_a_visit_goes_on_the_rota_for_one_of_the_packages_carers(people):
    admin, cara, uma = people
    home = await package(admin, cara)
    entry = await add(admin, home.id, cara.id, "09:00", 45, weekdays=["Mon", "Wed", "Fri"])
    assert (entry.start, entry.length, entry.weekdays, entry.days, entry.carer_name) == (
        "09:00", 45, [1, 3, 5], "Mon, Wed, Fri", "Cara Carer")
    with pytest.raises(ValidationError, match="not one of this package's carers"):
        await add(admin, home.id, uma.id, "11:00")
    await add(admin, home.id, None, "18:00")  # nobody yet
    assert [(e.start, e.carer_id) for e in await rota.list_rota(admin, home.id)] == [("09:00", cara.id),
                                                                                      ("18:00", None)]
    assert (await CarePackage.get(id=home.id)).visit_times == "09:00,18:00"  # derived, for older readers
    assert [e.start for e in await rota.list_rota(cara, home.id)] == ["09:00"]  # a carer sees their own
    with pytest.raises(NotFound):
        await rota.list_rota(uma, home.id)
    with pytest.raises(Conflict, match="visits on the package's rota"):
        await care.do_unassign_carer(admin, home.id, cara.id, None)
    await rota.do_remove_visit(admin, entry.id, None, at=WINTER)
    assert (await CarePackage.get(id=home.id)).visit_times == "18:00"
    await care.do_unassign_carer(admin, home.id, cara.id, None)


async def test_a_carer_cannot_have_two_visits_at_once_on_one_package_or_two(people):
    admin, cara, _ = people
    one, two = await package(admin, cara), await package(admin, cara, name="Mr Ted Client")
    first = await add(admin, one.id, cara.id, "09:00", 60, weekdays="12345")
    with pytest.raises(Conflict) as refused:
        await add(admin, two.id, cara.id, "09:30", 30, weekdays="5")
    assert f"visit {first.id}" in refused.value.message and f"care package {one.id}" in refused.value.message
    assert "Mon–Fri 09:00–10:00" in refused.value.message
    with pytest.raises(Conflict, match="this package"):
        await add(admin, one.id, cara.id, "08:45", 30)
    await add(admin, two.id, cara.id, "10:00", 30, weekdays="12345")  # back to back is fine
    await add(admin, two.id, cara.id, "09:30", 30, weekdays="67")  # and so are other days
    # A change is checked the same way, and does not clash with itself.
    other = await add(admin, two.id, cara.id, "12:00", 30)
    with pytest.raises(Conflict, match=f"visit {first.id}"):
        await rota.do_change_visit(admin, other.id, RotaEntryChange(start="09:15"), None, at=WINTER)
    changed = await rota.do_change_visit(admin, other.id, RotaEntryChange(start="12:15", length=20), None, at=WINTER)
    assert (changed.start, changed.length) == ("12:15", 20)


async def test_clashes_are_compared_in_real_instants_across_zones(people):
    """New York's clocks change three weeks before London's in spring and a week after in autumn:
    a London visit at 13:15 overlaps a New York visit at 09:00 only in those weeks."""
    admin, cara, uma = people
    new_york = await package(admin, cara, uma, zone="America/New_York", name="Mr Ned York")
    london = await package(admin, cara, uma)
    ny = await add(admin, new_york.id, cara.id, "09:00", 60, weekdays="12345")
    with pytest.raises(Conflict) as refused:
        await add(admin, london.id, cara.id, "13:15", 30, weekdays="12345")
    # The first overlap: Monday 9 March, 13:15 GMT is 09:15 EDT.
    assert "Mon 09 Mar 2026 13:15–13:45, Europe/London" in refused.value.message
    assert f"visit {ny.id}" in refused.value.message and "America/New_York" in refused.value.message
    # From April on, the spring weeks are past, but the autumn week (26 to 30 October) is ahead.
    with pytest.raises(Conflict, match="Mon 26 Oct 2026 13:15"):
        await add(admin, london.id, cara.id, "13:15", 30, weekdays="12345", at=datetime(2026, 4, 1, tzinfo=UTC))
    # A London package that ends before New York's clocks change does not clash.
    short = await package(admin, cara, ends_on=date(2026, 3, 6), name="Ms Short Stay")
    await add(admin, short.id, cara.id, "13:15", 30, weekdays="12345")
    # In London's winter 14:00 is 09:00 in New York: always a clash; another carer is free.
    with pytest.raises(Conflict):
        await add(admin, london.id, cara.id, "14:30", 15, weekdays="3")
    await add(admin, london.id, uma.id, "14:30", 15, weekdays="3")


async def test_planned_visits_counts_each_packages_visits_per_day(people):
    admin, cara, _ = people
    home = await package(admin, cara, starts_on=date(2026, 3, 2), ends_on=date(2026, 3, 8))
    other = await package(admin, cara, zone="UTC", name="Mr Ted Client")
    await add(admin, home.id, cara.id, "08:00", weekdays="12345")
    await add(admin, home.id, cara.id, "18:00", weekdays="67")
    await add(admin, home.id, None, "12:00", weekdays="1")
    removed = await add(admin, other.id, cara.id, "10:00")
    await rota.do_remove_visit(admin, removed.id, None, at=WINTER)
    counts = await rota.planned_visits([home.id, other.id], date(2026, 3, 1), date(2026, 3, 10))
    assert counts == {(home.id, date(2026, 3, 2)): 2, **{(home.id, date(2026, 3, d)): 1 for d in (3, 4, 5, 6, 7, 8)}}


async def test_planned_visits_follow_the_rota_as_it_stood_each_day(people):
    """A visit added, moved to other weekdays or removed counts from the day of the change on:
    the days before keep the rota they had (the figures of last week do not change today)."""
    admin, cara, _ = people
    home = await package(admin, cara, starts_on=date(2026, 3, 1))
    march = lambda d: datetime(2026, 3, d, 12, 0, tzinfo=UTC)  # noqa: E731
    daily = await add(admin, home.id, cara.id, "08:00", at=march(2))             # every day from Mon 2
    weekdays = await add(admin, home.id, cara.id, "18:00", weekdays="12345", at=march(2))
    await rota.do_change_visit(admin, weekdays.id, RotaEntryChange(weekdays="6"), None, at=march(4))  # Sat from Wed 4
    await rota.do_remove_visit(admin, daily.id, None, at=march(6))                # none from Fri 6
    counts = await rota.planned_visits([home.id], date(2026, 3, 1), date(2026, 3, 8))
    assert counts == {(home.id, date(2026, 3, 2)): 2, (home.id, date(2026, 3, 3)): 2,  # Mon, Tue: both
                      (home.id, date(2026, 3, 4)): 1, (home.id, date(2026, 3, 5)): 1,  # the daily one only
                      (home.id, date(2026, 3, 7)): 1}                                  # Sat: the moved one


# --- check-in and check-out ---------------------------------------------------------------------


def check(day: date, **location) -> VisitCheck:
    return VisitCheck.model_validate({"on_date": day.isoformat(), **location})


async def test_a_carer_checks_in_once_and_out_once_and_the_office_is_told(people):
    admin, cara, uma = people
    home = await package(admin, cara, uma)
    entry = await add(admin, home.id, cara.id, "09:00", 30)  # 08:00 UTC on 29 March (BST)
    at = datetime(2026, 3, 29, 8, 5, tzinfo=UTC)
    with pytest.raises(Conflict, match="Check in to this visit first"):
        await visits.do_check_out(cara, entry.id, check(SPRING), client_address=None, at=at, late_after=LATE)
    with pytest.raises(Conflict, match="check in from 08:00"):
        await visits.do_check_in(cara, entry.id, check(SPRING), client_address=None,
                                 at=datetime(2026, 3, 29, 6, 30, tzinfo=UTC), late_after=LATE)
    with pytest.raises(NotFound):  # not hers
        await visits.do_check_in(uma, entry.id, check(SPRING), client_address=None, at=at, late_after=LATE)
    view, created = await visits.do_check_in(cara, entry.id, check(SPRING, latitude=51.5072, longitude=-0.1276,
                                                                   accuracy=12), client_address="10.0.0.1",
                                             at=at, late_after=LATE)
    assert created and view.state == "checked_in" and view.checked_in_time == "09:05" and not view.checked_in_late
    again, created = await visits.do_check_in(cara, entry.id, check(SPRING), client_address=None,
                                              at=at + timedelta(minutes=1), late_after=LATE)
    assert not created and again.visit.id == view.visit.id and again.visit.checked_in_at == at
    [row] = await Visit.all()
    assert "51.5" not in row.in_location and row.in_accuracy == 12  # sealed at rest
    out, changed = await visits.do_check_out(cara, entry.id, check(SPRING), client_address=None,
                                             at=at + timedelta(minutes=28), late_after=LATE)
    assert changed and out.state == "done" and out.checked_out_time == "09:33"
    _, changed = await visits.do_check_out(cara, entry.id, check(SPRING), client_address=None,
                                           at=at + timedelta(minutes=40), late_after=LATE)
    assert not changed
    checked_in, checked_out = await events(admin.id)
    assert (checked_in.type, checked_out.type) == ("visit.checked_in", "visit.checked_out")
    assert checked_in.data["client"] == "I. C." and checked_in.data["time"] == "09:00"
    assert checked_in.data["carer_name"] == "Cara Carer" and checked_in.data["late"] is False
    assert checked_out.data["minutes"] == 28
    for event in (checked_in, checked_out):
        assert "Iris" not in str(event.data) and "51.5" not in str(event.data)
    assert [e.type for e in await events(cara.id)] == ["visit.checked_in", "visit.checked_out"]
    assert await events(uma.id) == []
    places = await visits.visit_locations(admin, [row.id], None)
    assert places[row.id]["in"] == "51.507200,-0.127600"
    assert await AuditEntry.filter(action="phi.read", subject_type="visit").count() == 1


def test_a_location_is_both_coordinates_in_range_or_none():
    for bad in ({"latitude": 91, "longitude": 0}, {"latitude": 10}, {"accuracy": 5},
                {"latitude": 0, "longitude": 180.5}, {"latitude": float("nan"), "longitude": 0}):
        with pytest.raises(PydanticValidationError):
            check(SPRING, **bad)
    assert check(SPRING, latitude=-90, longitude=180, accuracy=0).location() == "-90.000000,180.000000"


async def test_a_days_visits_move_through_their_states(people):
    admin, cara, _ = people
    home = await package(admin, cara)
    entry = await add(admin, home.id, cara.id, "09:00", 30)
    day_of = {"upcoming": "07:59", "due": "08:14", "late": "08:15", "missed": "08:30"}
    for state, hhmm in day_of.items():
        at = datetime.combine(SPRING, datetime.strptime(hhmm, "%H:%M").time(), tzinfo=UTC)
        [v] = await visits.carer_visits(cara, None, at=at, late_after=LATE)
        assert (v.state, v.occurrence.time, v.client_name) == (state, "09:00", "Mrs Iris Client"), hhmm
    await visits.do_check_in(cara, entry.id, check(SPRING), client_address=None,
                             at=datetime(2026, 3, 29, 8, 20, tzinfo=UTC), late_after=LATE)
    [v] = await visits.package_visits(admin, home.id, at=datetime(2026, 3, 29, 8, 40, tzinfo=UTC), late_after=LATE)
    assert (v.state, v.checked_in_late, v.carer_name) == ("checked_in", True, "Cara Carer")


# --- late and missed alerts ---------------------------------------------------------------------


def alert_runner(settings) -> Runner:
    kinds = (visit_alerts.PLAN, visit_alerts.LATE, visit_alerts.MISSED)
    return Runner("test", settings, handlers={kind: HANDLERS[kind] for kind in kinds})


async def run_every_five_minutes(runner: Runner, start: datetime, end: datetime) -> None:
    at = start
    while at <= end:
        await runner.run_due(at=at)
        await runner.run_due(at=at)  # what the planning pass deferred, due now, runs in the next one
        at += timedelta(minutes=5)


async def test_late_then_missed_once_each_on_the_day_the_clocks_change(database, people):
    admin, cara, uma = people
    home = await package(admin, cara, uma)
    # 01:30 does not exist in London on 29 March: it is read as 02:30 BST, 01:30 UTC.
    night = await add(admin, home.id, cara.id, "01:30", 30)
    morning = await add(admin, home.id, uma.id, "09:00", 45)  # 08:00 UTC, after the change
    checked = await add(admin, home.id, cara.id, "10:00", 30)
    await add(admin, home.id, None, "11:00", 30)  # nobody assigned: no alerts
    ended = await package(admin, cara, ends_on=date(2026, 3, 28), name="Mr Ended")
    await add(admin, ended.id, cara.id, "12:00", 30)
    await visits.do_check_in(cara, checked.id, check(SPRING), client_address=None,
                             at=datetime(2026, 3, 29, 8, 58, tzinfo=UTC), late_after=LATE)
    runner = alert_runner(database)
    await run_every_five_minutes(runner, datetime(2026, 3, 28, 23, 0, tzinfo=UTC),
                                 datetime(2026, 3, 29, 8, 55, tzinfo=UTC))
    await run_every_five_minutes(runner, datetime(2026, 3, 29, 9, 0, tzinfo=UTC),
                                 datetime(2026, 3, 29, 14, 0, tzinfo=UTC))
    alerts = [e for e in await events(admin.id) if e.type in ("visit.late", "visit.missed")]
    assert [(e.type, e.data["entry_id"], e.data["time"]) for e in alerts] == [
        ("visit.late", night.id, "02:30"), ("visit.missed", night.id, "02:30"),
        ("visit.late", morning.id, "09:00"), ("visit.missed", morning.id, "09:00")]
    assert [e.data["minutes"] for e in alerts] == [15, 30, 15, 45]
    assert {e.data["client"] for e in alerts} == {"I. C."}
    assert [e.data["carer_name"] for e in alerts] == ["Cara Carer", "Cara Carer", "Uma Carer", "Uma Carer"]
    assert [e.type for e in await events(uma.id)] == ["visit.late", "visit.missed"]
    jobs = {j.key: (j.due_at, j.status) for j in await Job.filter(kind__in=[visit_alerts.LATE, visit_alerts.MISSED])}
    assert jobs[f"visit-late:{night.id}:2026-03-29:02:30"] == (datetime(2026, 3, 29, 1, 45, tzinfo=UTC), "done")
    assert jobs[f"visit-missed:{morning.id}:2026-03-29:09:00"] == (datetime(2026, 3, 29, 8, 45, tzinfo=UTC), "done")
    assert not any(f":{checked.id}:" in key for key in jobs)  # checked in before its moment: never planned


async def test_a_visit_checked_in_after_planning_raises_nothing(database, people):
    admin, cara, _ = people
    home = await package(admin, cara, zone="UTC")
    entry = await add(admin, home.id, cara.id, "09:00", 30)
    runner = alert_runner(database)
    await runner.run_due(at=datetime(2026, 3, 29, 8, 0, tzinfo=UTC))  # planned
    assert await Job.filter(kind=visit_alerts.LATE).count() == 1
    await visits.do_check_in(cara, entry.id, check(SPRING), client_address=None,
                             at=datetime(2026, 3, 29, 9, 14, tzinfo=UTC), late_after=LATE)
    await run_every_five_minutes(runner, datetime(2026, 3, 29, 9, 15, tzinfo=UTC),
                                 datetime(2026, 3, 29, 10, 0, tzinfo=UTC))
    assert [e.type for e in await events(admin.id)] == ["visit.checked_in"]
    assert set(await Job.filter(kind__in=[visit_alerts.LATE, visit_alerts.MISSED]).values_list(
        "status", flat=True)) == {"skipped"}


async def test_a_late_alert_past_the_visits_length_leaves_it_to_the_missed_one(database, people):
    admin, cara, _ = people
    home = await package(admin, cara, zone="UTC")
    await add(admin, home.id, cara.id, "09:00", 30)
    runner = alert_runner(database)
    await runner.run_due(at=datetime(2026, 3, 29, 8, 0, tzinfo=UTC))
    # The runners were down from 08:00 to 09:40: both are due, only the missed alert is raised.
    await runner.run_due(at=datetime(2026, 3, 29, 9, 40, tzinfo=UTC))
    await runner.run_due(at=datetime(2026, 3, 29, 9, 40, tzinfo=UTC))
    assert [e.type for e in await events(admin.id)] == ["visit.missed"]


# --- the migration --------------------------------------------------------------------------


async def test_visit_times_become_daily_rota_entries_with_the_first_carer(people):
    admin, cara, uma = people
    staffed = await CarePackage.create(client_name="x", starts_on=LONG_AGO, visit_times="08:00,13:30")
    await PackageCarer.create(package_id=staffed.id, carer_id=uma.id)
    await PackageCarer.create(package_id=staffed.id, carer_id=cara.id)
    alone = await CarePackage.create(client_name="x", starts_on=LONG_AGO, visit_times="18:00")
    await CarePackage.create(client_name="x", starts_on=LONG_AGO, visit_times="")
    migration = importlib.import_module("migrations.0018_visits")
    conn = connections.get("default")
    await migration.rota_from_visit_times(None, SimpleNamespace(client=conn, DIALECT=conn.capabilities.dialect))
    rows = await RotaEntry.all().order_by("package_id", "start").values_list(
        "package_id", "carer_id", "weekdays", "start", "length")
    assert rows == [(staffed.id, uma.id, "1234567", 480, 30), (staffed.id, uma.id, "1234567", 810, 30),
                    (alone.id, None, "1234567", 1080, 30)]


# --- through the app -----------------------------------------------------------------------


async def test_the_rota_and_check_in_over_the_api(app, client):
    from tests.helpers import csrf_token, login

    app.state.clock = lambda: datetime(2026, 3, 29, 8, 5, tzinfo=UTC)
    admin, secret = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    home = await package(admin, cara)
    other = await package(admin, name="Mr Ted Client")
    document = (await client.get("/api/v1/openapi.json")).json()
    for path in ("/api/v1/care/packages/{package_id}/rota", "/api/v1/care/rota/{entry_id}",
                 "/api/v1/care/rota/{entry_id}/check-in", "/api/v1/care/rota/{entry_id}/check-out",
                 "/api/v1/care/packages/{package_id}/visits"):
        assert path in document["paths"], path
    await login(client, admin.email, totp_secret=secret)
    headers = {"x-csrf-token": await csrf_token(client)}
    added = await client.post(f"/api/v1/care/packages/{home.id}/rota", headers=headers,
                              json={"carer_id": cara.id, "weekdays": [1, 2, 3, 4, 5, 6, 7], "start": "09:00",
                                    "length": 30})
    assert added.status_code == 201, added.text
    entry_id = added.json()["id"]
    bad = await client.post(f"/api/v1/care/packages/{home.id}/rota", headers=headers,
                            json={"weekdays": [8], "start": "25:00", "length": 2})
    assert bad.status_code == 422 and {f["field"] for f in bad.json()["error"]["fields"]} == {
        "weekdays", "start", "length"}
    clash = await client.post(f"/api/v1/care/packages/{home.id}/rota", headers=headers,
                              json={"carer_id": cara.id, "weekdays": [7], "start": "09:15", "length": 30})
    assert clash.status_code == 409 and f"visit {entry_id}" in clash.json()["error"]["message"]
    page = await client.get(f"/admin/care/packages/{home.id}")
    assert page.status_code == 200 and 'id="rota-entry-' in page.text and "due now" in page.text

    await login(client, cara.email)
    headers = {"x-csrf-token": await csrf_token(client)}
    today = (await client.get("/api/v1/care/today")).json()
    assert [(v["time"], v["state"], v["client_name"]) for v in today["visits"]] == [("09:00", "due", "Mrs Iris Client")]
    body = {"on_date": "2026-03-29", "latitude": 51.5, "longitude": -0.12, "accuracy": 8}
    first = await client.post(f"/api/v1/care/rota/{entry_id}/check-in", headers=headers, json=body)
    assert first.status_code == 201 and first.json()["state"] == "checked_in" and not first.json()["replayed"]
    again = await client.post(f"/api/v1/care/rota/{entry_id}/check-in", headers=headers, json=body)
    assert again.status_code == 200 and again.json()["replayed"]
    assert (await client.post(f"/api/v1/care/rota/{entry_id}/check-in", headers=headers,
                              json={**body, "latitude": 120})).status_code == 422
    assert (await client.get(f"/api/v1/care/packages/{other.id}/visits")).status_code == 404
    out = await client.post(f"/api/v1/care/rota/{entry_id}/check-out", headers=headers, json={"on_date": "2026-03-29"})
    assert out.status_code == 200 and out.json()["state"] == "done"
    dashboard = await client.get("/carer")
    assert 'data-state="done"' in dashboard.text and f"/carer/packages/{home.id}" in dashboard.text


# --- what an archive, a package change and odd input must not do ---------------------------------


async def test_an_archived_package_takes_no_check_ins_and_no_rota_changes(people):
    admin, cara, _ = people
    home = await package(admin, cara, ends_on=WINTER.date())
    entry = await add(admin, home.id, cara.id, "08:00")
    await care.do_archive_package(admin, home.id, None, at=WINTER)
    with pytest.raises(NotFound):
        await visits.do_check_in(cara, entry.id, VisitCheck(on_date=WINTER.date()), client_address=None, at=WINTER,
                                 late_after=LATE)
    with pytest.raises(Conflict, match="archived"):
        await add(admin, home.id, cara.id, "12:00")
    with pytest.raises(Conflict, match="archived"):
        await rota.do_change_visit(admin, entry.id, RotaEntryChange(start="09:00"), None, at=WINTER)
    assert await visits.carer_visits(cara, None, at=WINTER, late_after=LATE) == []


async def test_a_new_zone_or_longer_dates_cannot_make_a_carers_visits_overlap(people):
    admin, cara, _ = people
    london = await package(admin, cara)
    paris_soon = await package(admin, cara, name="Mme Paris")
    await add(admin, london.id, cara.id, "09:00", 60)
    await add(admin, paris_soon.id, cara.id, "10:00", 30)  # London 10:00: after the 09:00 visit ends
    with pytest.raises(Conflict, match="overlaps"):  # Paris 10:00 is London 09:00
        await care.do_update_package(admin, paris_soon.id, PackageChange(time_zone="Europe/Paris"), None, at=WINTER)
    assert (await CarePackage.get(id=paris_soon.id)).time_zone == "Europe/London"  # nothing half-written
    ending = await package(admin, cara, ends_on=date(2026, 1, 31), name="Mr Ending")
    starting = await package(admin, cara, starts_on=date(2026, 2, 1), name="Ms Starting")
    await add(admin, ending.id, cara.id, "14:00")
    await add(admin, starting.id, cara.id, "14:00")
    with pytest.raises(Conflict, match="overlaps"):
        await care.do_update_package(admin, ending.id, PackageChange.model_validate({"ends_on": None}), None,
                                     at=WINTER)


async def test_dates_out_of_range_and_free_text_reasons_are_refused_with_a_4xx(app, client):
    admin, secret = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    home = await package(admin, cara)
    task = await care.do_create_task(admin, home.id, TaskIn.model_validate({
        "carer_id": cara.id, "title": "Medication prompt", "target": 1, "period": "day"}), None, at=WINTER)
    entry = await add(admin, home.id, cara.id, "22:00")
    app.state.clock = lambda: WINTER
    await login(client, cara.email)
    headers = {"x-csrf-token": await csrf_token(client, "/carer")}
    far = await client.get("/api/v1/care/progress", params={"start": "9999-12-25", "end": "9999-12-31"})
    assert far.status_code == 422 and "out of range" in far.text
    assert (await client.get("/carer/progress", params={"start": "9999-12-25", "end": "9999-12-31"})).status_code \
        == 422
    check_in = await client.post(f"/api/v1/care/rota/{entry.id}/check-in", headers=headers,
                                 json={"on_date": "0001-01-01"})
    assert check_in.status_code == 422 and "out of range" in check_in.text
    free = await client.post(f"/api/v1/care/tasks/{task.id}/completions", headers=headers, json={
        "idempotency_key": "free-text-0001", "status": "not_done", "reason": "Taken to hospital with chest pain"})
    assert free.status_code == 422 and "is not one of: Client declined" in free.text
    listed = await client.post(f"/api/v1/care/tasks/{task.id}/completions", headers=headers, json={
        "idempotency_key": "listed-0001", "status": "not_done", "reason": "Other", "note": "Taken to hospital"})
    assert listed.status_code == 201
