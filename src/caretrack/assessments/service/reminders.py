"""Reminders about assessments: a carer is reminded of an attempt's due date the day before and
on the morning of it (on the carer's own clock), and admins get a daily digest of the
competencies that have lapsed or are due for renewal (caretrack.assessments.service.standing).

The due-date reminders are deferred with the attempt (do_assign: an admin's assignment and a
renewal alike) and cancelled when it is handed in; each re-checks at its moment that the attempt
is still open with that due date, and is skipped past DUE_GRACE, never sent late."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from caretrack.accounts.models import User
from caretrack.assessments.models import Attempt, AttemptStatus, Competency
from caretrack.assessments.service.standing import DUE_WINDOW, Standing, standing
from caretrack.core.clock import in_zone, zone_of
from caretrack.core.queue import JobContext, Skipped
from caretrack.core.roles import Role
from caretrack.core.transaction import Tx, atomic
from caretrack.notifications.schemas import Kind
from caretrack.notifications.service import notify

REMIND = "assessments.due_reminder"
DIGEST = "assessments.competency_digest"
REMINDER_KIND = Kind.CARE_REMINDER  # the users' channel choices (caretrack.notifications)
DIGEST_KIND = Kind.COMPETENCY_DIGEST
DIGEST_EVERY = timedelta(hours=24)
DIGEST_AT = timedelta(hours=7)  # daily at 07:00 UTC, before the office opens in Europe
DIGEST_GRACE = timedelta(hours=6)
DUE_GRACE = timedelta(hours=1)
# (name, days before the due date, local time of day): the evening's notice and the morning's.
DUE_REMINDERS = (("before", 1, time(9, 0)), ("day", 0, time(8, 0)))


def due_key_prefix(attempt_id: int) -> str:
    return f"assessment-reminder:{attempt_id}:"


def due_reminder_moments(due_on: date, time_zone: str) -> list[tuple[str, datetime]]:
    """When the reminders of an attempt due on `due_on` fall, as UTC instants of the carer's
    local times of day."""
    zone = zone_of(time_zone)
    return [(name, datetime.combine(due_on - timedelta(days=days), at, tzinfo=zone).astimezone(UTC))
            for name, days, at in DUE_REMINDERS]


def long_date(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"


async def plan_due_reminders(tx: Tx, attempt: Attempt, carer: User, at: datetime) -> int:
    """In the assigning transaction: defer the attempt's reminders whose moment is still ahead."""
    if attempt.due_on is None:
        return 0
    planned = 0
    for name, moment in due_reminder_moments(attempt.due_on, carer.time_zone):
        if moment <= at:
            continue
        await tx.defer(REMIND, {"attempt_id": attempt.id, "reminder": name, "due_on": attempt.due_on.isoformat(),
                                "remind_at": moment.isoformat()},
                       due=moment, key=f"{due_key_prefix(attempt.id)}{name}")
        planned += 1
    return planned


async def send_due_reminder(ctx: JobContext) -> None:
    """The `assessments.due_reminder` job: remind the carer of an open attempt's due date."""
    payload = ctx.payload
    remind_at = datetime.fromisoformat(payload["remind_at"])
    if ctx.at > remind_at + DUE_GRACE:
        raise Skipped(f"{ctx.at - remind_at} after its moment (grace {DUE_GRACE}): not sent late")
    attempt = await Attempt.get_or_none(id=payload["attempt_id"]).prefetch_related("template", "carer")
    if attempt is None:
        raise Skipped(f"assessment {payload['attempt_id']} was withdrawn")
    if attempt.status not in (AttemptStatus.ASSIGNED, AttemptStatus.IN_PROGRESS):
        raise Skipped(f"assessment {attempt.id} is {attempt.status.value}")
    if attempt.due_on is None or attempt.due_on.isoformat() != payload["due_on"]:
        raise Skipped(f"assessment {attempt.id} is no longer due on {payload['due_on']}")
    carer: User = attempt.carer
    if not carer.is_active:
        raise Skipped(f"carer {carer.id} is no longer active")
    async with atomic() as tx:
        link = f"{ctx.settings.base_url}/carer/assessments/{attempt.id}"
        when = "today" if payload["reminder"] == "day" else f"on {long_date(attempt.due_on)}"
        await notify(tx, carer, REMINDER_KIND, at=ctx.at, email=("assessment_due", {
            "name": carer.full_name, "title": attempt.template.title, "due": long_date(attempt.due_on),
            "today": payload["reminder"] == "day", "link": link}, ()),
            sms_text=f"CareTrack: an assessment is due {when}. Details: {link}")
        await ctx.finish(tx)


@dataclass(frozen=True)
class Lapse:
    carer: str
    skill: str
    expires_at: datetime


async def competency_digest(at: datetime) -> tuple[list[Lapse], list[Lapse]]:
    """Active carers' competencies that have lapsed by `at`, and those due for renewal at it
    (which the renewal job assigns), soonest first."""
    rows = await Competency.filter(expires_at__lte=at + DUE_WINDOW, carer__is_active=True,
                                   carer__role=Role.CARER).prefetch_related("carer", "skill").order_by(
        "expires_at", "id")
    lapses = [(standing(c, at), Lapse(c.carer.full_name, c.skill.name, c.expires_at)) for c in rows]
    return ([lapse for state, lapse in lapses if state == Standing.EXPIRED],
            [lapse for state, lapse in lapses if state == Standing.DUE])


async def send_competency_digest(ctx: JobContext) -> None:
    """The daily `assessments.competency_digest` job: one email to each active admin, or none when
    nothing has lapsed or lapses soon. All of them commit with the job's completion. A morning's
    digest that no runner could send by the afternoon (the platform was down) is skipped: the
    next morning's says the same, and up to date."""
    tick = datetime.fromisoformat(ctx.payload.get("tick") or ctx.at.isoformat())
    if ctx.at - tick > DIGEST_GRACE:
        raise Skipped(f"the digest for {tick:%Y-%m-%d %H:%M} UTC is {ctx.at - tick} late")
    expired, expiring = await competency_digest(ctx.at)
    if not expired and not expiring:
        return
    admins = await User.filter(role=Role.ADMIN, is_active=True).order_by("id")

    def rows(lapses: list[Lapse], admin: User) -> list[dict[str, str]]:
        return [{"carer": lapse.carer, "skill": lapse.skill,
                 "expires": long_date(in_zone(lapse.expires_at, admin.time_zone).date())} for lapse in lapses]

    async with atomic() as tx:
        for admin in admins:
            await notify(tx, admin, DIGEST_KIND, at=ctx.at, email=("competency_digest", {
                "name": admin.full_name, "expired": rows(expired, admin), "expiring": rows(expiring, admin),
                "link": f"{ctx.settings.base_url}/admin/training"}, ()),
                sms_text=f"CareTrack: {len(expired)} competencies expired, {len(expiring)} due for renewal. "
                         f"Details: {ctx.settings.base_url}/admin/training")
        await ctx.finish(tx)

