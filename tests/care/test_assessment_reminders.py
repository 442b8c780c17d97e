"""Assessment due-date reminders on SQLite and PostgreSQL: deferred with the attempt (an admin's
assignment or a renewal), sent the day before and on the morning of the due date on the carer's
clock, cancelled or skipped once the attempt is handed in, skipped past the grace."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from caretrack.assessments import jobs as assessment_jobs  # noqa: F401  (registers the reminder jobs)
from caretrack.assessments import service
from caretrack.assessments.models import Attempt, AttemptStatus, Competency
from caretrack.assessments.schemas import AnswersIn
from caretrack.assessments.service import reminders
from caretrack.core.queue import Runner
from caretrack.core.queue.models import Job
from caretrack.core.queue.registry import HANDLERS
from caretrack.core.roles import Role
from caretrack.mail.models import OutboundEmail
from tests.care.helpers import admin_user, template
from tests.helpers import make_user

LONDON = ZoneInfo("Europe/London")
ASSIGNED = datetime(2026, 3, 27, 23, 50, tzinfo=UTC)  # Friday, ten to midnight UTC
DUE = date(2026, 3, 30)  # Monday: the day before is Sunday 29 March, when London's clocks go forward


def sender(settings, name: str = "test") -> Runner:
    return Runner(name, settings, handlers={reminders.REMIND: HANDLERS[reminders.REMIND]})


def local(day: date, hour: int) -> datetime:
    """A London wall-clock time as a UTC instant, computed here with zoneinfo."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=LONDON).astimezone(UTC)


@pytest.fixture
async def assigned(database):
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer", time_zone="Europe/London")
    t, questions = await template(admin, manual=False)
    attempt = await service.do_assign(admin, t.id, cara.id, DUE.isoformat(), at=ASSIGNED)
    return cara, t, questions, attempt


async def test_the_carer_is_reminded_the_day_before_and_on_the_morning_it_is_due(database, assigned):
    cara, t, _, attempt = assigned
    jobs = list(await Job.filter(kind=reminders.REMIND).order_by("due_at"))
    before, today = local(date(2026, 3, 29), 9), local(DUE, 8)
    assert (before, today) == (datetime(2026, 3, 29, 8, tzinfo=UTC), datetime(2026, 3, 30, 7, tzinfo=UTC))
    assert [(j.key, j.due_at) for j in jobs] == [(f"assessment-reminder:{attempt.id}:before", before),
                                                 (f"assessment-reminder:{attempt.id}:day", today)]
    runner = sender(database)
    assert await runner.run_due(at=before - timedelta(seconds=1)) == 0
    assert await runner.run_due(at=before) == 1
    assert await runner.run_due(at=today) == 1
    first, second = await OutboundEmail.filter(to_address=cara.email).order_by("id")
    assert first.subject == f"Due tomorrow: {t.title}"
    assert "is due tomorrow, Monday 30 March 2026" in first.text_body
    assert second.subject == f"Due today: {t.title}"
    assert "is due today, Monday 30 March 2026" in second.text_body
    assert f"http://testserver/carer/assessments/{attempt.id}" in second.text_body
    for _ in range(2):
        await runner.run_due(at=today + timedelta(days=1))
    assert await OutboundEmail.filter(to_address=cara.email).count() == 2


async def test_handing_in_cancels_the_reminders(database, assigned):
    cara, _, (q1, q2), attempt = assigned
    await service.do_save_answers(cara, attempt.id, AnswersIn(answers={str(q1.id): 1, str(q2.id): [0, 1]},
                                                              submit=True), at=ASSIGNED + timedelta(hours=1))
    assert set(await Job.filter(kind=reminders.REMIND).values_list("status", flat=True)) == {"cancelled"}
    assert await sender(database).run_due(at=local(DUE, 8)) == 0
    assert await OutboundEmail.filter(to_address=cara.email).count() == 0


async def test_an_attempt_handed_in_or_withdrawn_as_its_reminder_falls_due_is_skipped(database, assigned):
    cara, t, _, attempt = assigned
    other = await make_user(Role.CARER, "otto@example.org", name="Otto Carer", time_zone="Europe/London")
    withdrawn = await service.do_assign(None, t.id, other.id, DUE, at=ASSIGNED)
    # Changed after its reminders were queued, by paths that do not cancel them.
    await Attempt.filter(id=attempt.id).update(status=AttemptStatus.SUBMITTED)
    await Attempt.filter(id=withdrawn.id).delete()
    assert await sender(database).run_due(at=local(date(2026, 3, 29), 9)) == 2
    errors = sorted(await Job.filter(kind=reminders.REMIND, status="skipped").values_list("last_error", flat=True))
    assert errors == sorted([f"assessment {withdrawn.id} was withdrawn", f"assessment {attempt.id} is submitted"])
    assert await OutboundEmail.all().count() == 0


async def test_a_reminder_later_than_the_grace_is_skipped(database, assigned):
    cara, *_ = assigned
    runner, before = sender(database), local(date(2026, 3, 29), 9)
    assert await runner.run_due(at=before + reminders.DUE_GRACE + timedelta(seconds=1)) == 1
    [job] = await Job.filter(kind=reminders.REMIND, status="skipped")
    assert job.key.endswith(":before") and "not sent late" in job.last_error
    assert await OutboundEmail.filter(to_address=cara.email).count() == 0
    assert await runner.run_due(at=local(DUE, 8) + reminders.DUE_GRACE) == 1  # the morning's: within grace
    assert await OutboundEmail.filter(to_address=cara.email).count() == 1


async def test_only_reminders_still_ahead_are_deferred(database):
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", time_zone="Europe/London")
    t, _ = await template(admin, manual=False)
    # Assigned on the Sunday at 08:00 UTC sharp (09:00 in London): the day-before reminder's moment has come.
    attempt = await service.do_assign(admin, t.id, cara.id, DUE, at=datetime(2026, 3, 29, 8, tzinfo=UTC))
    assert await Job.filter(kind=reminders.REMIND).values_list("key", flat=True) == [
        f"assessment-reminder:{attempt.id}:day"]
    undated = await service.do_assign(admin, (await template(admin, skill="Moving", manual=False))[0].id, cara.id,
                                      at=datetime(2026, 3, 29, 8, tzinfo=UTC))
    assert not await Job.filter(key__startswith=f"assessment-reminder:{undated.id}:").exists()


async def test_a_renewal_is_reminded_of_its_due_date_too(database):
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", time_zone="Europe/London")
    t, _ = await template(admin, manual=False)
    expires = datetime(2026, 4, 20, 12, tzinfo=UTC)
    await Competency.create(carer_id=cara.id, skill_id=t.skill_id, level=90, achieved_at=expires - timedelta(days=365),
                            expires_at=expires)
    at = datetime(2026, 3, 28, 23, 50, tzinfo=UTC)
    assert await service.check_renewals(at) == 1
    renewal = await Attempt.get(carer_id=cara.id)
    assert (renewal.reason, renewal.due_on) == ("renewal", date(2026, 4, 20))
    due = [j.due_at for j in await Job.filter(key__startswith=f"assessment-reminder:{renewal.id}:").order_by("due_at")]
    assert due == [local(date(2026, 4, 19), 9), local(date(2026, 4, 20), 8)]


async def test_two_runners_racing_send_a_reminder_once(database, assigned):
    cara, *_ = assigned
    one, other = sender(database, "one"), sender(database, "other")
    before = local(date(2026, 3, 29), 9)
    ran = await asyncio.gather(one.run_due(at=before), other.run_due(at=before), one.run_due(at=before))
    assert sum(ran) == 1
    assert await OutboundEmail.filter(to_address=cara.email).count() == 1
