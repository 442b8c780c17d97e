"""Visit reminders for carers: each carer on a package is reminded REMINDER_LEAD before each of
the package's visit times. A recurring job plans one reminder job per (package, carer, date,
visit time) a few hours ahead, keyed so that it is planned once; the reminder re-checks at its
moment that the visit still stands, and is skipped, never sent late, past REMINDER_GRACE.

Visit times (CarePackage.visit_times) and the visit's day are on the package's clock
(caretrack.care.zones): 08:00 in Europe/London is 07:00 UTC in summer. The email shows the visit
on the carer's own clock (User.time_zone)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from tortoise.expressions import Q

from caretrack.accounts.models import User
from caretrack.care import zones
from caretrack.care.models import CarePackage, PackageCarer
from caretrack.care.schedule import visit_times
from caretrack.core import crypto
from caretrack.core.audit.service import SYSTEM
from caretrack.core.clock import in_zone
from caretrack.core.queue import JobContext, Skipped
from caretrack.core.queue.models import Job
from caretrack.core.roles import Role
from caretrack.core.transaction import atomic
from caretrack.notifications.schemas import Kind
from caretrack.notifications.service import notify

PLAN = "care.plan_visit_reminders"
REMIND = "care.visit_reminder"
KIND = Kind.CARE_REMINDER  # the carer's channel choice (caretrack.notifications)
REMINDER_LEAD = timedelta(minutes=30)  # how long before a visit its carers are reminded
REMINDER_GRACE = timedelta(minutes=10)  # later than this after its moment, a reminder is skipped
PLAN_EVERY = timedelta(minutes=15)
PLAN_HORIZON = timedelta(hours=6)  # reminders due within this are planned (many planning runs ahead)
HONORIFICS = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "sir", "dame", "prof", "rev"})
_KEYS_PER_QUERY = 500  # well under SQLite's limit on bound parameters
_PLAN_LOCK = 0x63617265  # PostgreSQL advisory lock held while a planner reads and writes keys


def visit_at(package: zones.Zoned, day: date, hhmm: str) -> datetime:
    """The instant of a visit at `hhmm` on the package's `day`, on its clock."""
    hours, minutes = hhmm.split(":")
    return zones.instant(package, day, int(hours) * 60 + int(minutes))


def reminder_key(package_id: int, carer_id: int, day: date, hhmm: str) -> str:
    return f"{key_prefix(package_id, carer_id)}{day.isoformat()}:{hhmm}"


def key_prefix(package_id: int, carer_id: int) -> str:
    """The keys of one carer's reminders for one package (cancelled together on unassignment)."""
    return f"visit-reminder:{package_id}:{carer_id}:"


def runs_on(package: CarePackage, day: date) -> bool:
    return package.starts_on <= day and (package.ends_on is None or day <= package.ends_on)


def initials(name: str) -> str:
    """A client as a reminder names them: initials only ("Mrs Iris Client" -> "I. C.")."""
    words = [w for w in name.replace(".", " ").split() if w.lower() not in HONORIFICS and w[:1].isalpha()]
    return " ".join(f"{w[0].upper()}." for w in words) or "your client"


def local_when(instant: datetime, time_zone: str) -> str:
    """"09:00 on Sunday 29 March (BST, Europe/London)": the instant on the reader's clock."""
    local = in_zone(instant, time_zone)
    zone = local.tzname() if local.tzname() == time_zone else f"{local.tzname()}, {time_zone}"
    return f"{local:%H:%M} on {local:%A} {local.day} {local:%B} ({zone})"


@dataclass(frozen=True)
class Planned:
    key: str
    due: datetime
    payload: dict[str, Any]


async def _candidates(at: datetime) -> list[Planned]:
    """Every reminder whose moment falls in (at - grace, at + horizon], for each active carer on
    each package running on the visit's day."""
    # UTC dates widened by a day either side: a package's local date may be either neighbour.
    first = (at - REMINDER_GRACE).date() - timedelta(days=1)
    last = (at + PLAN_HORIZON + REMINDER_LEAD).date() + timedelta(days=1)
    packages = await CarePackage.filter(Q(ends_on__isnull=True) | Q(ends_on__gte=first), starts_on__lte=last,
                                        archived_at__isnull=True)
    if not packages:
        return []
    carers: dict[int, list[int]] = {}
    for package_id, carer_id in await PackageCarer.filter(
            package_id__in=[p.id for p in packages], carer__is_active=True, carer__role=Role.CARER,
    ).order_by("id").values_list("package_id", "carer_id"):
        carers.setdefault(package_id, []).append(carer_id)
    planned = []
    for package in packages:
        for offset in range((last - first).days + 1):
            day = first + timedelta(days=offset)
            if not runs_on(package, day):
                continue
            for hhmm in visit_times(package):
                remind = visit_at(package, day, hhmm) - REMINDER_LEAD
                if not at - REMINDER_GRACE < remind <= at + PLAN_HORIZON:
                    continue
                for carer_id in carers.get(package.id, []):
                    planned.append(Planned(reminder_key(package.id, carer_id, day, hhmm), remind, {
                        "package_id": package.id, "carer_id": carer_id, "day": day.isoformat(), "visit": hhmm,
                        "remind_at": remind.isoformat()}))
    return planned


async def plan_visit_reminders(at: datetime) -> int:
    """Defer the reminders due soon that are not planned yet; returns how many it deferred.
    A key already queued, running, done or skipped is never planned again; one cancelled (its
    carer was taken off the package, then put back) is."""
    candidates = await _candidates(at)
    if not candidates:
        return 0
    async with atomic() as tx:
        if tx.conn.capabilities.dialect == "postgres":  # two planners at once: the second waits
            await tx.conn.execute_query("SELECT pg_advisory_xact_lock($1)", [_PLAN_LOCK])
        keys = [c.key for c in candidates]
        taken: set[str] = set()
        for start in range(0, len(keys), _KEYS_PER_QUERY):
            rows: list[Any] = await Job.filter(key__in=keys[start:start + _KEYS_PER_QUERY]).exclude(
                status="cancelled").using_db(tx.conn).values_list("key", flat=True)
            taken.update(str(key) for key in rows)
        fresh = [c for c in candidates if c.key not in taken]
        for planned in fresh:
            await tx.defer(REMIND, planned.payload, due=planned.due, key=planned.key)
    return len(fresh)


async def send_visit_reminder(ctx: JobContext) -> None:
    """The `care.visit_reminder` job: email the carer, unless the visit no longer stands for
    them or the moment has passed by more than the grace."""
    payload = ctx.payload
    remind_at = datetime.fromisoformat(payload["remind_at"])
    if ctx.at > remind_at + REMINDER_GRACE:
        raise Skipped(f"{ctx.at - remind_at} after its moment (grace {REMINDER_GRACE}): not sent late")
    package = await CarePackage.get_or_none(id=payload["package_id"])
    day, hhmm = date.fromisoformat(payload["day"]), payload["visit"]
    if package is None or package.archived_at is not None or not runs_on(package, day):
        raise Skipped(f"package {payload['package_id']} is not running on {day}")
    if hhmm not in visit_times(package):
        raise Skipped(f"package {package.id} no longer has a visit at {hhmm}")
    carer = await User.get_or_none(id=payload["carer_id"], role=Role.CARER, is_active=True)
    if carer is None or not await PackageCarer.exists(package_id=package.id, carer_id=carer.id):
        raise Skipped(f"carer {payload['carer_id']} is no longer on package {package.id}")
    visit = visit_at(package, day, hhmm)
    async with atomic() as tx:
        client = crypto.unseal(package.client_name, "care_packages.client_name") or ""
        await tx.audit(SYSTEM, "phi.read", "care_package", package.id, fields=["client_name"],
                       purpose="visit reminder", carer_id=carer.id)
        link = f"{ctx.settings.base_url}/carer"
        await notify(tx, carer, KIND, at=ctx.at, email=("visit_reminder", {
            "name": carer.full_name, "client": initials(client), "when": local_when(visit, carer.time_zone),
            "minutes": max(int((visit - ctx.at).total_seconds() // 60), 0), "link": link}, ()),
            # No client, not even initials: a text shows on a locked screen.
            sms_text=f"CareTrack: you have a visit at {in_zone(visit, carer.time_zone):%H:%M}. Details: {link}")
        await ctx.finish(tx)
