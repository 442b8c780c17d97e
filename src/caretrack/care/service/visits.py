"""Visits on a day, and checking in and out of them. A visit is an occurrence of a rota entry
(caretrack.care.rota); it gets a row (Visit) when its carer checks in, once per entry and date.
Its state, at an instant:

    upcoming  before its start          checked_in  checked in, not yet out
    due       from its start            done        checked out
    late      `late_after` past its start with no check-in
    missed    its length passed (and at least `late_after`) with no check-in

Locations are sealed (they say where the client lives); reading them is audited."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError

from caretrack.accounts.models import User
from caretrack.care import rota, zones
from caretrack.care.models import CarePackage, PackageCarer, RotaEntry, Visit
from caretrack.care.service.packages import _package_for, client_names
from caretrack.care.service.reminders import initials
from caretrack.care.visit_schemas import VisitCheck, VisitOut, VisitState
from caretrack.core import crypto
from caretrack.core.audit.service import Actor
from caretrack.core.errors import Conflict, NotFound
from caretrack.core.roles import Role
from caretrack.core.transaction import Tx, atomic

CHECK_IN_EARLY = timedelta(hours=1)  # a carer may check in this long before the visit starts
CHECK_IN_LATE = timedelta(hours=12)  # and up to this long after it should have ended


def late_after(settings: Any) -> timedelta:
    """How long after its start a visit with no check-in is late (CARETRACK_CARE_LATE_VISIT_MINUTES)."""
    return timedelta(minutes=int(settings.care_late_visit_minutes))


def late_at(occurrence: rota.Occurrence, late_after: timedelta) -> datetime:
    return occurrence.starts_at + late_after


def missed_at(occurrence: rota.Occurrence, late_after: timedelta) -> datetime:
    """When a visit with no check-in is missed: its length passed, and never before it is late."""
    return max(occurrence.ends_at, late_at(occurrence, late_after))


def state_of(occurrence: rota.Occurrence, visit: Visit | None, at: datetime, late_after: timedelta) -> VisitState:
    if visit is not None:
        return "done" if visit.checked_out_at is not None else "checked_in"
    if at < occurrence.starts_at:
        return "upcoming"
    if at < late_at(occurrence, late_after):
        return "due"
    return "late" if at < missed_at(occurrence, late_after) else "missed"


@dataclass
class DayVisit:
    occurrence: rota.Occurrence
    visit: Visit | None
    state: VisitState
    client_name: str
    carer_name: str | None
    late_after: timedelta

    @property
    def checked_in_late(self) -> bool:
        return self.visit is not None and self.visit.checked_in_at >= late_at(self.occurrence, self.late_after)

    @property
    def checked_in_time(self) -> str | None:
        """The check-in on the package's clock ("09:04")."""
        return zones.wall_time(self.occurrence.package, self.visit.checked_in_at) if self.visit else None

    @property
    def checked_out_time(self) -> str | None:
        out = self.visit.checked_out_at if self.visit else None
        return zones.wall_time(self.occurrence.package, out) if out else None

    @property
    def located(self) -> bool:
        return self.visit is not None and self.visit.in_location is not None

    @property
    def key(self) -> str:
        return f"{self.occurrence.entry.id}-{self.occurrence.day.isoformat()}"

    def out(self, replayed: bool = False) -> VisitOut:
        o, v = self.occurrence, self.visit
        return VisitOut(entry_id=o.entry.id, package_id=o.package.id, on_date=o.day, time=o.time,
                        end_time=o.end_time, time_zone=o.package.time_zone,
                        length=int((o.ends_at - o.starts_at).total_seconds() // 60),
                        starts_at=o.starts_at, ends_at=o.ends_at, client_name=self.client_name,
                        carer_id=o.entry.carer_id, carer_name=self.carer_name, state=self.state,
                        checked_in_at=v.checked_in_at if v else None, checked_out_at=v.checked_out_at if v else None,
                        checked_in_late=self.checked_in_late, replayed=replayed)


def _occurrence_of(visit: Visit, entry: RotaEntry, package: CarePackage) -> rota.Occurrence:
    """A recorded visit keeps the times the rota gave it when it was checked in."""
    return rota.Occurrence(entry, package, visit.on_date, visit.starts_at,
                           visit.starts_at + timedelta(minutes=visit.length))


async def _day_visits(entries: list[RotaEntry], packages: dict[int, CarePackage], days: dict[int, list[date]],
                      names: dict[int, str], *, at: datetime, late_after: timedelta,
                      open_visits: Sequence[Visit] = ()) -> list[DayVisit]:
    """The entries' visits on their packages' `days`, with what was recorded, in time order."""
    recorded = {(v.entry_id, v.on_date): v for v in await Visit.filter(
        entry_id__in=[e.id for e in entries], on_date__in=sorted({d for ds in days.values() for d in ds}))
        .prefetch_related("carer")} if entries else {}
    for visit in open_visits:
        recorded.setdefault((visit.entry_id, visit.on_date), visit)
    by_id = {e.id: e for e in entries}
    found: dict[tuple[int, date], DayVisit] = {}
    for entry in entries:
        package = packages[entry.package_id]
        for day in days.get(package.id, []):
            done = recorded.get((entry.id, day))
            occurrence = (_occurrence_of(done, entry, package) if done is not None
                          else rota.on_day(entry, package, day) if entry.is_active else None)
            if occurrence is not None:
                carer = done.carer if done is not None else entry.carer
                found[(entry.id, day)] = DayVisit(occurrence, done, state_of(occurrence, done, at, late_after),
                                                  names.get(package.id, ""), carer.full_name if carer else None,
                                                  late_after)
    for visit in open_visits:  # checked in on an earlier day and not yet out
        owner = by_id.get(visit.entry_id)
        if owner is not None and (owner.id, visit.on_date) not in found:
            package = packages[owner.package_id]
            found[(owner.id, visit.on_date)] = DayVisit(_occurrence_of(visit, owner, package), visit, "checked_in",
                                                        names.get(package.id, ""), visit.carer.full_name, late_after)
    return sorted(found.values(), key=lambda d: (d.occurrence.starts_at, d.occurrence.entry.id))


async def carer_visits(carer: User, client_address: str | None, *, at: datetime,
                       late_after: timedelta) -> list[DayVisit]:
    """The carer's visits today (each package's today), and any they are still checked in to."""
    packages = {p.id: p for p in await CarePackage.filter(carers__carer_id=carer.id, archived_at__isnull=True)
                .distinct()}
    if not packages:
        return []
    days = {pid: [zones.today(p, at)] for pid, p in packages.items()}
    open_visits = list(await Visit.filter(carer_id=carer.id, checked_out_at__isnull=True,
                                          checked_in_at__gte=at - CHECK_IN_LATE - timedelta(days=1))
                       .prefetch_related("carer"))
    entries = list(await RotaEntry.filter(package_id__in=list(packages)).filter(
        carer_id=carer.id).prefetch_related("carer"))
    entries = [e for e in entries if e.is_active or any(v.entry_id == e.id for v in open_visits)]
    if not entries:
        return []
    names = await client_names(carer, sorted({e.package_id for e in entries}), client_address)
    return await _day_visits(entries, packages, days, names, at=at, late_after=late_after, open_visits=open_visits)


async def package_visits(viewer: User, package_id: int, *, at: datetime, late_after: timedelta,
                         day: date | None = None) -> list[DayVisit]:
    """A package's visits on its `day` (today on its clock by default), for the office. The
    client's name is left blank: the package page already shows (and audits) it."""
    package = await _package_for(viewer, package_id)
    day = day or zones.today(package, at)
    query = RotaEntry.filter(package_id=package.id).prefetch_related("carer")
    if viewer.role != Role.ADMIN:
        query = query.filter(carer_id=viewer.id)
    entries = list(await query)
    return await _day_visits(entries, {package.id: package}, {package.id: [day]}, {}, at=at, late_after=late_after)


# --- checking in and out ------------------------------------------------------------------------


async def _occurrence_for(carer: User, entry_id: int, day: date) -> rota.Occurrence:
    """The carer's own visit of `entry_id` on `day`; anything else is a 404."""
    entry = await RotaEntry.get_or_none(id=entry_id, carer_id=carer.id)
    package = await CarePackage.get_or_none(id=entry.package_id, archived_at__isnull=True) if entry else None
    if entry is None or package is None or not await PackageCarer.exists(package_id=entry.package_id,
                                                                         carer_id=carer.id):
        raise NotFound(f"No visit with id {entry_id} on your rota.")
    occurrence = rota.on_day(entry, package, day) if entry.is_active else None
    if occurrence is None:
        raise NotFound(f"Visit {entry_id} is not on the rota on {day:%A %d %B %Y} "
                       f"({rota.weekday_label(entry.weekdays)}, from {package.starts_on}"
                       f"{f' to {package.ends_on}' if package.ends_on else ''}).")
    return occurrence


def _location_audit(command: VisitCheck, field: str) -> dict[str, Any]:
    return {"fields": [field]} if command.location() else {}


async def _client_initials(tx: Tx, package: CarePackage, reader: Actor, purpose: str) -> str:
    """The client as an event names them (initials only: event data is not sealed)."""
    name = crypto.unseal(package.client_name, "care_packages.client_name") or ""
    await tx.audit(reader, "phi.read", "care_package", package.id, fields=["client_name"], purpose=purpose)
    return initials(name)


def event_data(occurrence: rota.Occurrence, carer_id: int | None, carer_name: str | None, client: str,
               **extra: Any) -> dict[str, Any]:
    """What every visit event carries: which visit, when (the package's clock), whose, for whom."""
    return {"entry_id": occurrence.entry.id, "package_id": occurrence.package.id,
            "on_date": occurrence.day.isoformat(), "time": occurrence.time, "time_zone": occurrence.package.time_zone,
            "starts_at": occurrence.starts_at.isoformat(), "carer_id": carer_id, "carer_name": carer_name,
            "client": client, **extra}


async def _view(occurrence: rota.Occurrence, visit: Visit, carer: User, at: datetime,
                late_after: timedelta) -> DayVisit:
    occurrence = _occurrence_of(visit, occurrence.entry, occurrence.package)
    names = await client_names(carer, [occurrence.package.id], None)
    return DayVisit(occurrence, visit, state_of(occurrence, visit, at, late_after),
                    names.get(occurrence.package.id, ""), carer.full_name, late_after)


async def do_check_in(carer: User, entry_id: int, command: VisitCheck, *, client_address: str | None,
                      at: datetime, late_after: timedelta) -> tuple[DayVisit, bool]:
    """Check in to a visit, once: a repeat returns the first check-in (created False)."""
    occurrence = await _occurrence_for(carer, entry_id, command.on_date)
    existing = await Visit.get_or_none(entry_id=entry_id, on_date=command.on_date)
    if existing is None:
        if at < occurrence.starts_at - CHECK_IN_EARLY:
            raise Conflict(f"This visit starts at {occurrence.time} on {occurrence.day:%A %d %B} "
                           f"({occurrence.package.time_zone}): check in from "
                           f"{zones.wall_time(occurrence.package, occurrence.starts_at - CHECK_IN_EARLY)}.")
        if at > occurrence.ends_at + CHECK_IN_LATE:
            raise Conflict(f"This visit ended more than {int(CHECK_IN_LATE.total_seconds() // 3600)} hours ago: "
                           "it can no longer be checked in to; tell the office.")
        try:
            async with atomic() as tx:
                visit = await Visit.create(
                    using_db=tx.conn, entry_id=entry_id, on_date=command.on_date, carer_id=carer.id,
                    starts_at=occurrence.starts_at, length=occurrence.entry.length, checked_in_at=at,
                    in_location=crypto.seal(command.location(), "care_visits.in_location"),
                    in_accuracy=command.accuracy)
                actor = Actor(carer.id, client_address)
                late = at >= late_at(occurrence, late_after)
                await tx.audit(actor, "care.visit_checked_in", "visit", visit.id, entry_id=entry_id,
                               on_date=command.on_date.isoformat(), late=late, located=bool(command.location()))
                if command.location():
                    await tx.audit(actor, "phi.write", "visit", visit.id, **_location_audit(command, "in_location"))
                client = await _client_initials(tx, occurrence.package, actor, "visit check-in")
                await tx.emit("visit.checked_in", actor_id=carer.id, subject=("visit", visit.id),
                              data=event_data(occurrence, carer.id, carer.full_name, client, late=late,
                                              at=at.isoformat(), located=bool(command.location())),
                              roles=[Role.ADMIN], users=[carer.id])
            return await _view(occurrence, visit, carer, at, late_after), True
        except IntegrityError:  # a parallel retry checked in first
            existing = await Visit.get_or_none(entry_id=entry_id, on_date=command.on_date)
            if existing is None:
                raise
    if existing.carer_id != carer.id:
        when = zones.wall_time(occurrence.package, existing.checked_in_at)
        raise Conflict(f"Someone else checked in to this visit at {when}.")
    return await _view(occurrence, existing, carer, at, late_after), False


async def do_check_out(carer: User, entry_id: int, command: VisitCheck, *, client_address: str | None,
                       at: datetime, late_after: timedelta) -> tuple[DayVisit, bool]:
    """Check out of a visit checked in to; a repeat returns the first check-out (changed False)."""
    occurrence = await _occurrence_for_record(carer, entry_id, command.on_date)
    async with atomic() as tx:
        visit = await Visit.filter(entry_id=entry_id, on_date=command.on_date, carer_id=carer.id).using_db(
            tx.conn).select_for_update().first()
        if visit is None:
            raise Conflict("Check in to this visit first: there is no check-in to check out of.")
        if visit.checked_out_at is not None:
            changed = False
        else:
            visit.checked_out_at = max(at, visit.checked_in_at)
            visit.out_location = crypto.seal(command.location(), "care_visits.out_location")  # type: ignore[assignment]
            visit.out_accuracy = command.accuracy
            await visit.save(using_db=tx.conn, update_fields=["checked_out_at", "out_location", "out_accuracy"])
            actor = Actor(carer.id, client_address)
            minutes = int((visit.checked_out_at - visit.checked_in_at).total_seconds() // 60)
            await tx.audit(actor, "care.visit_checked_out", "visit", visit.id, minutes=minutes,
                           located=bool(command.location()))
            if command.location():
                await tx.audit(actor, "phi.write", "visit", visit.id, **_location_audit(command, "out_location"))
            client = await _client_initials(tx, occurrence.package, actor, "visit check-out")
            await tx.emit("visit.checked_out", actor_id=carer.id, subject=("visit", visit.id),
                          data=event_data(occurrence, carer.id, carer.full_name, client, minutes=minutes,
                                          at=visit.checked_out_at.isoformat()),
                          roles=[Role.ADMIN], users=[carer.id])
            changed = True
    return await _view(occurrence, visit, carer, at, late_after), changed


async def _occurrence_for_record(carer: User, entry_id: int, day: date) -> rota.Occurrence:
    """For a check-out: the visit as checked in, even if the rota has changed since."""
    visit = await Visit.get_or_none(entry_id=entry_id, on_date=day, carer_id=carer.id)
    if visit is None:
        return await _occurrence_for(carer, entry_id, day)
    entry = await RotaEntry.get(id=entry_id)
    package = await CarePackage.get_or_none(id=entry.package_id, archived_at__isnull=True)
    if package is None or not await PackageCarer.exists(package_id=package.id, carer_id=carer.id):
        raise NotFound(f"No visit with id {entry_id} on your rota.")  # taken off it, or archived, since
    return _occurrence_of(visit, entry, package)


async def visit_locations(viewer: User, visit_ids: list[int], client_address: str | None) -> dict[int, dict[str, Any]]:
    """Where check-ins and check-outs were made (admins; one audited PHI read)."""
    if viewer.role != Role.ADMIN or not visit_ids:
        return {}
    rows = list(await Visit.filter(id__in=visit_ids))
    located = [r for r in rows if r.in_location or r.out_location]
    if not located:
        return {}
    async with atomic() as tx:
        await tx.audit(Actor(viewer.id, client_address), "phi.read", "visit", None,
                       fields=["in_location", "out_location"], ids=sorted(r.id for r in located))
    return {r.id: {"in": crypto.unseal(r.in_location, "care_visits.in_location"), "in_accuracy": r.in_accuracy,
                   "out": crypto.unseal(r.out_location, "care_visits.out_location"), "out_accuracy": r.out_accuracy}
            for r in located}
