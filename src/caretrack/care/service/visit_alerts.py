"""Late and missed visits, through the job queue: a recurring job plans, a couple of hours ahead,
one `care.visit_late` job at each visit's late moment (CARETRACK_CARE_LATE_VISIT_MINUTES after
its start) and one `care.visit_missed` job at its missed moment (its length passed, and never
before it is late), keyed so each is planned once. Each re-checks at its moment and raises its
alert (event `visit.late` or `visit.missed`, to the admins and the carer) in the transaction
that marks it done, so an alert is raised once; none for a visit checked in, one whose package
is not running that day, one moved or removed (its new times are planned afresh) or one nobody
is assigned to (the package page shows those to the office)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from caretrack.care import rota
from caretrack.care.models import CarePackage, PackageCarer, RotaEntry, Visit
from caretrack.care.service.reminders import Planned, defer_once, rota_between
from caretrack.care.service.visits import _client_initials, event_data, late_after, late_at, missed_at
from caretrack.core.audit.service import SYSTEM
from caretrack.core.queue import JobContext, Skipped
from caretrack.core.roles import Role
from caretrack.core.transaction import atomic

PLAN = "care.plan_visit_alerts"
LATE = "care.visit_late"
MISSED = "care.visit_missed"
EVENTS = {LATE: "visit.late", MISSED: "visit.missed"}
PLAN_EVERY = timedelta(minutes=10)
PLAN_HORIZON = timedelta(hours=2)  # moments within this are planned (many planning runs ahead)
LOOKBACK = timedelta(hours=2)  # and moments passed this recently (the runners were down)


def alert_key(kind: str, occurrence: rota.Occurrence) -> str:
    word = "late" if kind == LATE else "missed"
    return f"visit-{word}:{occurrence.entry.id}:{occurrence.day.isoformat()}:{occurrence.time}"


async def plan_visit_alerts(at: datetime, late: timedelta) -> int:
    """Defer the alerts whose moment is near and not planned yet; returns how many it deferred."""
    low = at - LOOKBACK - timedelta(minutes=rota.MAX_LENGTH) - late
    occurrences = await rota_between(low, at + PLAN_HORIZON)
    if not occurrences:
        return 0
    days = [o.day for o in occurrences]
    checked_in = set(await Visit.filter(entry_id__in=sorted({o.entry.id for o in occurrences}),
                                        on_date__gte=min(days), on_date__lte=max(days))
                     .values_list("entry_id", "on_date"))
    planned: dict[str, list[Planned]] = {LATE: [], MISSED: []}
    for occurrence in occurrences:
        if (occurrence.entry.id, occurrence.day) in checked_in:
            continue
        for kind, moment in ((LATE, late_at(occurrence, late)), (MISSED, missed_at(occurrence, late))):
            if at - LOOKBACK < moment <= at + PLAN_HORIZON:
                planned[kind].append(Planned(alert_key(kind, occurrence), moment, {
                    "entry_id": occurrence.entry.id, "day": occurrence.day.isoformat(),
                    "starts_at": occurrence.starts_at.isoformat(), "length": occurrence.entry.length}))
    return sum([await defer_once(kind, candidates) for kind, candidates in planned.items()])


async def raise_visit_alert(ctx: JobContext) -> None:
    """The `care.visit_late` and `care.visit_missed` jobs: the alert, unless the visit was checked
    in to or no longer stands as planned."""
    payload, late = ctx.payload, late_after(ctx.settings)
    entry = await RotaEntry.get_or_none(id=payload["entry_id"], is_active=True).prefetch_related("carer")
    if entry is None:
        raise Skipped(f"visit {payload['entry_id']} is no longer on the rota")
    package = await CarePackage.get(id=entry.package_id)
    day = date.fromisoformat(payload["day"])
    if not rota.runs_on(package, day) or package.archived_at is not None:
        raise Skipped(f"package {package.id} is not running on {day}")
    occurrence = rota.on_day(entry, package, day)
    if occurrence is None or occurrence.starts_at.isoformat() != payload["starts_at"] \
            or entry.length != payload["length"]:
        raise Skipped(f"visit {entry.id} has moved on {day}; its new alerts are planned")
    carer = entry.carer
    if carer is None or not carer.is_active or carer.role != Role.CARER or not await PackageCarer.exists(
            package_id=package.id, carer_id=carer.id):
        raise Skipped(f"visit {entry.id} has no active carer on package {package.id}")
    if ctx.kind == LATE and ctx.at >= missed_at(occurrence, late):
        raise Skipped("past the visit's length: the missed-visit alert reports it")
    async with atomic() as tx:
        visit = await Visit.filter(entry_id=entry.id, on_date=day).using_db(tx.conn).first()
        if visit is not None:
            raise Skipped(f"checked in at {visit.checked_in_at.isoformat()}")
        client = await _client_initials(tx, package, SYSTEM, "late visit alert")
        minutes = max(int((ctx.at - occurrence.starts_at).total_seconds() // 60), 0)
        await tx.emit(EVENTS[ctx.kind], actor_id=None, subject=("rota_entry", entry.id),
                      data=event_data(occurrence, carer.id, carer.full_name, client, minutes=minutes),
                      roles=[Role.ADMIN], users=[carer.id])
        await ctx.finish(tx)
