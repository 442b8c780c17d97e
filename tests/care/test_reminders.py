"""Carers' visit reminders on SQLite and PostgreSQL, driven by the job runner at pinned instants:
each visit on the rota reminds its own carer, planned once, sent at its moment in the carer's own
zone, skipped past the grace or when the visit no longer stands for the carer, never sent twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from caretrack.accounts.models import User
from caretrack.care import jobs as care_jobs  # noqa: F401  (registers the reminder jobs)
from caretrack.care import service as care
from caretrack.care.models import CarePackage, RotaEntry
from caretrack.care.schemas import PackageIn
from caretrack.care.service import reminders, rota
from caretrack.care.visit_schemas import RotaEntryIn
from caretrack.core.errors import Conflict
from caretrack.core.queue import Runner
from caretrack.core.queue.models import Job
from caretrack.core.queue.registry import HANDLERS
from caretrack.core.roles import Role
from caretrack.mail import jobs as mail_jobs  # noqa: F401  (registers mail.deliver)
from caretrack.mail import service as mail_service
from caretrack.mail.models import OutboundEmail
from tests.care.helpers import LONG_AGO, admin_user
from tests.helpers import make_user

LONDON = ZoneInfo("Europe/London")
# Saturday 28 March 2026, evening: London's clocks go forward at 01:00 UTC the next morning.
EVENING = datetime(2026, 3, 28, 18, 0, tzinfo=UTC)
TEN_TO_MIDNIGHT = datetime(2026, 3, 28, 23, 50, tzinfo=UTC)  # the 00:20 visit's reminder
HALF_SEVEN = datetime(2026, 3, 29, 7, 30, tzinfo=UTC)  # the 08:00 visit's reminder, after the change


def reminder_runner(settings, name: str = "test", kinds=(reminders.PLAN, reminders.REMIND)) -> Runner:
    return Runner(name, settings, handlers={kind: HANDLERS[kind] for kind in kinds})


def sender(settings, name: str = "test") -> Runner:
    """A runner of the reminders alone (no planning)."""
    return reminder_runner(settings, name, kinds=(reminders.REMIND,))


async def package_for(admin, *carers, visit_times: str = "00:20,08:00", starts_on: date = LONG_AGO,
                      ends_on: date | None = None) -> CarePackage:
    """A package (on UTC) with a daily visit at each of `visit_times` for each of `carers`."""
    package = await care.do_create_package(admin, PackageIn.model_validate({
        "client_name": "Mrs Iris Client", "address": "1 High Street", "care_notes": "Diabetic; likes tea",
        "starts_on": starts_on.isoformat(), "ends_on": ends_on.isoformat() if ends_on else None}), None)
    for carer in carers:
        await care.do_assign_carer(admin, package.id, carer.id, None)
        for hhmm in visit_times.split(","):
            await rota.do_add_visit(admin, package.id, RotaEntryIn.model_validate({
                "carer_id": carer.id, "weekdays": "1234567", "start": hhmm, "length": 30}), None, at=EVENING)
    return package


async def emails_to(address: str) -> list[OutboundEmail]:
    return list(await OutboundEmail.filter(to_address=address).order_by("id"))


async def reminder_jobs() -> list[Job]:
    return list(await Job.filter(kind=reminders.REMIND).order_by("due_at", "key"))


@pytest.fixture
async def people(database):
    admin, _ = await admin_user()
    london = await make_user(Role.CARER, "cara@example.org", name="Cara Carer", time_zone="Europe/London")
    utc = await make_user(Role.CARER, "uma@example.org", name="Uma Carer")  # time_zone UTC
    return admin, london, utc


async def test_each_carer_is_reminded_at_the_moment_on_their_own_clock(database, people):
    admin, london, utc = people
    await package_for(admin, london, utc)
    runner = reminder_runner(database)
    sent_at: dict[int, datetime] = {}  # email id -> the pass that wrote it
    at = EVENING
    while at <= datetime(2026, 3, 29, 8, 0, tzinfo=UTC):  # a runner every five minutes
        await runner.run_due(at=at)
        await runner.run_due(at=at)  # what the planning pass deferred, due now, runs in the next one
        for email_id in await OutboundEmail.all().values_list("id", flat=True):
            sent_at.setdefault(email_id, at)
        at += timedelta(minutes=5)

    for carer in (london, utc):
        emails = await emails_to(carer.email)
        assert [sent_at[e.id] for e in emails] == [TEN_TO_MIDNIGHT, HALF_SEVEN]
    # The local times, computed here from the visits' UTC instants and the carers' zones.
    midnight_visit = datetime(2026, 3, 29, 0, 20, tzinfo=UTC)
    morning_visit = datetime(2026, 3, 29, 8, 0, tzinfo=UTC)
    assert midnight_visit.astimezone(LONDON).strftime("%H:%M %Z") == "00:20 GMT"
    assert morning_visit.astimezone(LONDON).strftime("%H:%M %Z") == "09:00 BST"
    first, second = await emails_to(london.email)
    assert "00:20 on Sunday 29 March (GMT, Europe/London)" in first.text_body
    assert "09:00 on Sunday 29 March (BST, Europe/London)" in second.text_body
    assert second.subject == "Visit reminder: 09:00 on Sunday 29 March (BST, Europe/London)"
    first, second = await emails_to(utc.email)
    assert "00:20 on Sunday 29 March (UTC)" in first.text_body  # sent on the Saturday, for Sunday
    assert "08:00 on Sunday 29 March (UTC)" in second.text_body
    for email in await OutboundEmail.all():
        body = email.text_body + email.html_body + email.subject
        assert "I. C." in body and "http://testserver/carer" in body and "in 30 minutes" in email.text_body
        for phi in ("Iris", "Client", "High Street", "Diabetic", "tea"):
            assert phi not in body
    jobs = await reminder_jobs()
    assert len(jobs) == 4 and {j.status for j in jobs} == {"done"}


async def test_a_reminder_is_planned_once_however_often_the_planner_runs(database, people):
    admin, london, utc = people
    package = await package_for(admin, london, utc)
    # The 23:50 reminder is planned six hours ahead, not a second before.
    assert await reminders.plan_visit_reminders(TEN_TO_MIDNIGHT - reminders.PLAN_HORIZON - timedelta(seconds=1)) == 0
    assert await reminders.plan_visit_reminders(TEN_TO_MIDNIGHT - timedelta(hours=6)) == 2
    assert await reminders.plan_visit_reminders(TEN_TO_MIDNIGHT - timedelta(hours=6)) == 0
    # Two planners at once (the second waits for the first on PostgreSQL).
    racing = await asyncio.gather(*(reminders.plan_visit_reminders(HALF_SEVEN - timedelta(hours=5))
                                    for _ in range(6)))
    assert sorted(racing) == [0, 0, 0, 0, 0, 2]
    # The recurring job too, tick after tick over the same hours.
    runner = reminder_runner(database)
    for minutes in range(0, 6 * 60, 15):
        await runner.run_due(at=TEN_TO_MIDNIGHT - timedelta(hours=6) + timedelta(minutes=minutes))
    jobs = await reminder_jobs()
    assert [(j.key, j.due_at) for j in jobs] == [
        (f"visit-reminder:{package.id}:{london.id}:2026-03-29:00:20", TEN_TO_MIDNIGHT),
        (f"visit-reminder:{package.id}:{utc.id}:2026-03-29:00:20", TEN_TO_MIDNIGHT),
        (f"visit-reminder:{package.id}:{london.id}:2026-03-29:08:00", HALF_SEVEN),
        (f"visit-reminder:{package.id}:{utc.id}:2026-03-29:08:00", HALF_SEVEN),
    ]


@pytest.mark.parametrize(("late", "sent"), [(timedelta(0), True), (reminders.REMINDER_GRACE, True),
                                            (reminders.REMINDER_GRACE + timedelta(seconds=1), False)])
async def test_a_reminder_later_than_the_grace_is_skipped_not_sent_late(database, people, late, sent):
    admin, london, _ = people
    await package_for(admin, london, visit_times="08:00")
    runner = reminder_runner(database)
    await runner.run_due(at=HALF_SEVEN - timedelta(hours=1))  # planned; then the server is down
    assert await sender(database).run_due(at=HALF_SEVEN + late) == 1
    [job] = await reminder_jobs()
    emails = await emails_to(london.email)
    assert len(emails) == (1 if sent else 0)
    if sent:  # the visit is half an hour after the reminder's moment, whenever within the grace it went
        assert f"in {30 - int(late.total_seconds() // 60)} minutes" in emails[0].text_body
    assert job.status == ("done" if sent else "skipped")
    if not sent:
        assert "not sent late" in job.last_error


async def test_a_carer_taken_off_the_package_gets_no_reminder_until_put_back(database, people):
    admin, london, utc = people
    package = await package_for(admin, london, utc, visit_times="08:00")
    runner = reminder_runner(database)
    await runner.run_due(at=HALF_SEVEN - timedelta(hours=2))
    # Their visits stand in the way: taken off the rota first, put back on it later.
    [visit] = await RotaEntry.filter(package_id=package.id, carer_id=london.id)
    with pytest.raises(Conflict, match="visits on the package's rota"):
        await care.do_unassign_carer(admin, package.id, london.id, None)
    await RotaEntry.filter(id=visit.id).update(is_active=False)
    await care.do_unassign_carer(admin, package.id, london.id, None)
    statuses = {j.key.split(":")[2]: j.status for j in await reminder_jobs()}
    assert statuses == {str(london.id): "cancelled", str(utc.id): "queued"}
    await runner.run_due(at=HALF_SEVEN)
    assert await emails_to(london.email) == [] and len(await emails_to(utc.email)) == 1

    # Put back the next evening: the next morning's reminder is planned again, and sent.
    await care.do_assign_carer(admin, package.id, london.id, None)
    await RotaEntry.filter(id=visit.id).update(is_active=True)
    await runner.run_due(at=HALF_SEVEN + timedelta(hours=20))
    await runner.run_due(at=HALF_SEVEN + timedelta(days=1))
    [email] = await emails_to(london.email)
    assert "09:00 on Monday 30 March (BST, Europe/London)" in email.text_body


async def test_the_reminder_rechecks_the_visit_at_its_moment(database, people):
    admin, london, utc = people
    ending = await package_for(admin, london, visit_times="08:00")
    moved = await package_for(admin, utc, visit_times="08:00")
    other = await make_user(Role.CARER, "otto@example.org", name="Otto Carer")
    leaving = await package_for(admin, other, visit_times="08:00")
    runner = reminder_runner(database)
    await runner.run_due(at=HALF_SEVEN - timedelta(hours=1))
    assert len(await reminder_jobs()) == 3
    # After planning: one package ends the day before, one visit moves to 09:00, one carer leaves.
    await CarePackage.filter(id=ending.id).update(ends_on=date(2026, 3, 28))
    await RotaEntry.filter(package_id=moved.id).update(start=9 * 60)
    await User.filter(id=other.id).update(is_active=False)
    await runner.run_due(at=HALF_SEVEN)
    assert await OutboundEmail.all().count() == 0
    *at_eight, at_nine = await reminder_jobs()  # the moved visit is planned afresh for 09:00
    assert (at_nine.key, at_nine.due_at, at_nine.status) == (
        f"visit-reminder:{moved.id}:{utc.id}:2026-03-29:09:00", HALF_SEVEN + timedelta(hours=1), "queued")
    reasons = {j.payload: (j.status, j.last_error) for j in at_eight}
    assert all(status == "skipped" for status, _ in reasons.values())
    errors = sorted(error for _, error in reasons.values())
    assert errors == sorted([f"package {ending.id} is not running on 2026-03-29",
                             f"package {moved.id} no longer has a visit at 08:00 for carer {utc.id}",
                             f"carer {other.id} is no longer on package {leaving.id}"])


async def test_a_package_is_reminded_only_on_the_days_it_runs(database, people):
    admin, london, _ = people
    await package_for(admin, london, visit_times="08:00", starts_on=date(2026, 3, 30), ends_on=date(2026, 3, 30))
    runner = reminder_runner(database)
    at = HALF_SEVEN - timedelta(hours=1)
    while at <= HALF_SEVEN + timedelta(days=2):
        await runner.run_due(at=at)
        await runner.run_due(at=at)
        at += timedelta(minutes=15)
    [email] = await emails_to(london.email)
    assert "09:00 on Monday 30 March (BST, Europe/London)" in email.text_body


async def test_two_runners_racing_send_each_reminder_once(database, people):
    admin, london, utc = people
    await package_for(admin, london, utc, visit_times="08:00")
    await reminder_runner(database).run_due(at=HALF_SEVEN - timedelta(hours=1))
    one, other = sender(database, "one"), sender(database, "other")
    ran = await asyncio.gather(one.run_due(at=HALF_SEVEN), other.run_due(at=HALF_SEVEN),
                               one.run_due(at=HALF_SEVEN + timedelta(seconds=1)))
    assert sum(ran) == 2
    for later in (timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)):
        await asyncio.gather(one.run_due(at=HALF_SEVEN + later), other.run_due(at=HALF_SEVEN + later))
    assert len(await emails_to(london.email)) == 1 and len(await emails_to(utc.email)) == 1


async def test_the_reminder_reaches_the_carers_mailbox(database, people, smtp_server):
    admin, london, _ = people
    await package_for(admin, london, visit_times="08:00")
    smtp = database.replace(smtp_host=smtp_server.host, smtp_port=smtp_server.port)
    runner = Runner("test", smtp, handlers={kind: HANDLERS[kind] for kind in (
        reminders.PLAN, reminders.REMIND, mail_service.DELIVER)})
    for at in (HALF_SEVEN - timedelta(hours=1), HALF_SEVEN, HALF_SEVEN):
        await runner.run_due(at=at)
    [message] = smtp_server.messages
    assert message["To"] == london.email
    assert message["Subject"] == "Visit reminder: 09:00 on Sunday 29 March (BST, Europe/London)"
    assert "visit to I. C. at 09:00" in message.get_body(("plain",)).get_content()
