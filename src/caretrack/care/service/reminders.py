"""Visit reminders for carers: a visit's carer (its rota entry's, caretrack.care.rota) is
reminded REMINDER_LEAD before it starts. A recurring job plans one reminder job per (package,
carer, date, visit time) a few hours ahead, keyed so that it is planned once; the reminder
re-checks at its moment that the visit still stands for that carer, and is skipped, never sent
late, past REMINDER_GRACE. Visits are on the package's clock (CarePackage.time_zone); the
email shows the visit on the carer's own clock (User.time_zone). A visit nobody is assigned to
reminds nobody."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from tortoise.expressions import Q

from caretrack.accounts.models import User
from caretrack.care import rota
from caretrack.care.models import CarePackage, PackageCarer, RotaEntry
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


def reminder_key(package_id: int, carer_id: int, day: date, hhmm: str) -> str:
    return f"{key_prefix(package_id, carer_id)}{day.isoformat()}:{hhmm}"


def key_prefix(package_id: int, carer_id: int) -> str:
    """The keys of one carer's reminders for one package (cancelled together on unassignment)."""
    return f"visit-reminder:{package_id}:{carer_id}:"


runs_on = rota.runs_on


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
    """Every reminder whose moment falls in (at - grace, at + horizon], for each visit on the
    rota with an active carer still on its package."""
    low, high = at - REMINDER_GRACE + REMINDER_LEAD, at + PLAN_HORIZON + REMINDER_LEAD  # the visits' starts
    planned = []
    for occurrence in await rota_between(low, high):
        remind = occurrence.starts_at - REMINDER_LEAD
        if not at - REMINDER_GRACE < remind <= at + PLAN_HORIZON:
            continue
        package, carer_id = occurrence.package, occurrence.entry.carer_id
        assert carer_id is not None
        planned.append(Planned(reminder_key(package.id, carer_id, occurrence.day, occurrence.time), remind, {
            "package_id": package.id, "carer_id": carer_id, "day": occurrence.day.isoformat(),
            "visit": occurrence.time, "remind_at": remind.isoformat()}))
    return planned


async def rota_between(low: datetime, high: datetime) -> list[rota.Occurrence]:
    """The visits starting from `low` to `high` whose carer is active and still on the package
    (entries nobody is assigned to are left out), in start order."""
    first, last = low.date() - timedelta(days=1), high.date() + timedelta(days=1)  # any zone's dates
    packages = {p.id: p for p in await CarePackage.filter(
        Q(ends_on__isnull=True) | Q(ends_on__gte=first), starts_on__lte=last, archived_at__isnull=True)}
    if not packages:
        return []
    on_package = set(await PackageCarer.filter(
        package_id__in=list(packages), carer__is_active=True, carer__role=Role.CARER,
    ).values_list("package_id", "carer_id"))
    found = []
    for entry in await RotaEntry.filter(package_id__in=list(packages), is_active=True, carer_id__isnull=False):
        if (entry.package_id, entry.carer_id) not in on_package:
            continue
        found += [o for o in rota.occurrences(entry, packages[entry.package_id], first, last)
                  if low <= o.starts_at <= high]
    return sorted(found, key=lambda o: (o.starts_at, o.entry.id))


async def plan_visit_reminders(at: datetime) -> int:
    """Defer the reminders due soon that are not planned yet; returns how many it deferred."""
    return await defer_once(REMIND, await _candidates(at))


async def defer_once(kind: str, candidates: list[Planned]) -> int:
    """Defer a `kind` job for each candidate whose key is not planned yet; returns how many.
    A key already queued, running, done or skipped is never planned again; one cancelled (a
    carer was taken off the package, then put back) is."""
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
            await tx.defer(kind, planned.payload, due=planned.due, key=planned.key)
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
    carer = await User.get_or_none(id=payload["carer_id"], role=Role.CARER, is_active=True)
    if carer is None or not await PackageCarer.exists(package_id=package.id, carer_id=carer.id):
        raise Skipped(f"carer {payload['carer_id']} is no longer on package {package.id}")
    entries = await RotaEntry.filter(package_id=package.id, carer_id=carer.id, is_active=True)
    visits = [o for o in (rota.on_day(e, package, day) for e in entries) if o is not None and o.time == hhmm]
    if not visits:
        raise Skipped(f"package {package.id} no longer has a visit at {hhmm} for carer {carer.id}")
    visit = visits[0].starts_at
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
