"""The admins' daily competency digest on SQLite and PostgreSQL: each active admin is emailed the
active carers' expired competencies and those due for renewal (within 30 days of lapsing, or the
last quarter of a shorter validity), with dates on the admin's clock; nothing is sent when there
is nothing to report; one digest per day."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from caretrack.accounts.models import User
from caretrack.assessments import jobs as assessment_jobs  # noqa: F401  (registers the digest job)
from caretrack.assessments.models import Competency, Skill
from caretrack.assessments.service import reminders
from caretrack.core.queue import Runner
from caretrack.core.queue.models import Job
from caretrack.core.queue.registry import HANDLERS
from caretrack.core.roles import Role
from caretrack.mail.models import OutboundEmail
from tests.care.helpers import admin_user
from tests.helpers import make_user

AT = datetime(2026, 3, 29, 7, 0, tzinfo=UTC)  # the digest's hour, on London's spring-forward day


def digest_runner(settings, name: str = "test") -> Runner:
    return Runner(name, settings, handlers={reminders.DIGEST: HANDLERS[reminders.DIGEST]})


async def competency(carer, skill: Skill, expires_at: datetime, validity: timedelta = timedelta(days=365)
                     ) -> Competency:
    return await Competency.create(carer_id=carer.id, skill_id=skill.id, level=80,
                                   achieved_at=expires_at - validity, expires_at=expires_at)


async def test_each_active_admin_gets_the_lapsed_and_lapsing_competencies(database):
    boss, _ = await admin_user()
    await User.filter(id=boss.id).update(time_zone="Europe/London")
    await make_user(Role.ADMIN, "ny@example.org", name="Nia York", time_zone="America/New_York")
    await make_user(Role.ADMIN, "gone@example.org", name="Old Admin", is_active=False)
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    carl = await make_user(Role.CARER, "carl@example.org", name="Carl Carer")
    left = await make_user(Role.CARER, "left@example.org", name="Lee Left", is_active=False)
    meds, hoist, food = [await Skill.create(name=n) for n in ("Medication", "Hoisting", "Food hygiene")]
    expired = AT - timedelta(days=3)  # 26 March 07:00 UTC
    lapsing = datetime(2026, 4, 10, 23, 30, tzinfo=UTC)  # 11 April in London, 10 April in New York
    await competency(cara, meds, expired)
    await competency(carl, hoist, lapsing)
    await competency(cara, food, AT + timedelta(days=31))  # beyond the 30 days: not in the digest
    await competency(left, meds, expired)  # no longer a carer here
    assert await digest_runner(database).run_due(at=AT) == 1

    emails = {e.to_address: e for e in await OutboundEmail.all()}
    assert sorted(emails) == ["boss@example.org", "ny@example.org"]
    day = {name: f"{d:%A} {d.day} {d:%B %Y}" for name, d in (
        ("expired", expired.astimezone(ZoneInfo("Europe/London"))),
        ("london", lapsing.astimezone(ZoneInfo("Europe/London"))),
        ("new_york", lapsing.astimezone(ZoneInfo("America/New_York"))))}
    assert day == {"expired": "Thursday 26 March 2026", "london": "Saturday 11 April 2026",
                   "new_york": "Friday 10 April 2026"}
    london, new_york = emails["boss@example.org"], emails["ny@example.org"]
    assert london.subject == "Competencies: 1 expired, 1 due for renewal"
    assert "Expired:\n- Cara Carer: Medication, expired Thursday 26 March 2026\n" in london.text_body
    assert "Due for renewal:\n- Carl Carer: Hoisting, expires Saturday 11 April 2026\n" in london.text_body
    assert "- Carl Carer: Hoisting, expires Friday 10 April 2026\n" in new_york.text_body
    assert "Hello Nia York" in new_york.text_body and "http://testserver/admin/training" in new_york.text_body
    for email in (london, new_york):
        for absent in ("Food hygiene", "Lee Left"):
            assert absent not in email.text_body and absent not in email.html_body
    assert "<td style=\"padding: 0.2rem 0.6rem\">Hoisting</td>" in london.html_body


async def test_nothing_to_report_sends_nothing(database):
    await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    await competency(cara, await Skill.create(name="Medication"), AT + timedelta(days=30, seconds=1))
    assert await digest_runner(database).run_due(at=AT) == 1
    assert await OutboundEmail.all().count() == 0
    [job] = await Job.filter(kind=reminders.DIGEST)
    assert job.status == "done"


async def test_the_digest_is_sent_once_a_day_whatever_the_number_of_runners(database):
    await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    await competency(cara, await Skill.create(name="Medication"), AT + timedelta(days=2))
    one, other = digest_runner(database, "one"), digest_runner(database, "other")
    at = AT
    while at < AT + timedelta(days=2):
        await asyncio.gather(one.run_due(at=at), other.run_due(at=at))
        at += timedelta(hours=1)
    subjects = await OutboundEmail.all().order_by("id").values_list("subject", flat=True)
    assert subjects == ["Competencies: 0 expired, 1 due for renewal"] * 2


async def test_a_short_validity_is_reported_in_its_last_quarter_not_as_soon_as_passed(database):
    """A skill valid for 7 days lapses within 30 days the moment it is passed; the digest lists
    it only in its last quarter (1¾ days), as the training matrix and the renewal job count it."""
    await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    carl = await make_user(Role.CARER, "carl@example.org", name="Carl Carer")
    week, fortnight = [await Skill.create(name=n) for n in ("Hand hygiene", "Hoist check")]
    await competency(cara, week, AT + timedelta(days=6), timedelta(days=7))  # passed a day ago
    await competency(carl, fortnight, AT + timedelta(days=3), timedelta(days=14))  # 3 of 3.5 days left
    assert await digest_runner(database).run_due(at=AT) == 1
    [email] = await OutboundEmail.all()
    assert email.subject == "Competencies: 0 expired, 1 due for renewal"
    assert "- Carl Carer: Hoist check, expires" in email.text_body
    assert "Hand hygiene" not in email.text_body
