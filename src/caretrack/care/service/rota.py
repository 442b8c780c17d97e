"""The rota: the admins put visits on a package's rota (weekdays, a start on the package's clock,
a length, one of the package's carers), change and remove them. A carer never has two visits at
once: a new or changed entry is compared, in real instants over the year ahead, with every other
visit of its carer on any package (two packages in different zones clash when their instants
do), and refused naming the visit it clashes with.

`planned_visits` is what the figures count visits by."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta

from caretrack.accounts.models import User
from caretrack.care import rota, zones
from caretrack.care.clashes import Slot, check_clash
from caretrack.care.models import CarePackage, PackageCarer, RotaEntry, RotaPlan
from caretrack.care.schedule import clock
from caretrack.care.service.packages import _changeable, _package_for
from caretrack.care.visit_schemas import RotaEntryChange, RotaEntryIn, RotaEntryOut
from caretrack.core.audit.service import Actor
from caretrack.core.errors import NotFound, ValidationError
from caretrack.core.roles import Role
from caretrack.core.transaction import Tx, atomic


def entry_out(entry: RotaEntry, package: CarePackage, carer_name: str | None) -> RotaEntryOut:
    return RotaEntryOut(id=entry.id, package_id=entry.package_id, carer_id=entry.carer_id, carer_name=carer_name,
                        weekdays=[int(d) for d in entry.weekdays], days=rota.weekday_label(entry.weekdays),
                        start=clock(entry.start), length=entry.length, time_zone=package.time_zone)


async def list_rota(viewer: User, package_id: int) -> list[RotaEntryOut]:
    """A package's active rota entries by start time (a carer sees only their own)."""
    package = await _package_for(viewer, package_id)
    query = RotaEntry.filter(package_id=package.id, is_active=True).prefetch_related("carer")
    if viewer.role != Role.ADMIN:
        query = query.filter(carer_id=viewer.id)
    entries = sorted(await query, key=lambda e: (e.start, e.weekdays, e.id))
    return [entry_out(e, package, e.carer.full_name if e.carer else None) for e in entries]


async def _check_carer(tx: Tx, package: CarePackage, carer_id: int | None) -> str | None:
    """The carer's name, if they are one of the package's carers (anyone else is a 422)."""
    if carer_id is None:
        return None
    assigned = await PackageCarer.filter(package_id=package.id, carer_id=carer_id, carer__is_active=True,
                                         carer__role=Role.CARER).using_db(tx.conn).prefetch_related("carer").first()
    if assigned is None:
        raise ValidationError(f"Carer {carer_id} is not one of this package's carers: assign them first.",
                              fields=[{"field": "carer_id", "message": "is not one of this package's carers"}])
    return str(assigned.carer.full_name)


async def _sync_visit_times(tx: Tx, package_id: int) -> None:
    """Rewrite the package's derived `visit_times` from its active rota."""
    starts = await RotaEntry.filter(package_id=package_id, is_active=True).using_db(tx.conn).values_list(
        "start", flat=True)
    times = ",".join(clock(int(m)) for m in sorted(set(starts)))  # type: ignore[call-overload]
    await CarePackage.filter(id=package_id).using_db(tx.conn).update(visit_times=times)


async def _emit(tx: Tx, admin: User, package_id: int, entry_id: int, change: str, *carer_ids: int | None) -> None:
    await tx.emit("visit.rota_changed", actor_id=admin.id, subject=("care_package", package_id),
                  data={"package_id": package_id, "entry_id": entry_id, "change": change},
                  roles=[Role.ADMIN], users=sorted({c for c in carer_ids if c is not None}))


async def _plan(tx: Tx, entry_id: int, package: CarePackage, at: datetime, weekdays: str) -> None:
    """The entry runs on `weekdays` from the package's date at `at` (the whole of that day)."""
    await RotaPlan.create(using_db=tx.conn, entry_id=entry_id, effective_on=zones.today(package, at),
                          weekdays=weekdays)


async def do_add_visit(admin: User, package_id: int, command: RotaEntryIn, client_address: str | None, *,
                       at: datetime) -> RotaEntryOut:
    package = await _changeable(admin, package_id)
    slot = Slot("".join(str(d) for d in command.weekdays), command.start_minutes(), command.length)
    async with atomic() as tx:
        name = await _check_carer(tx, package, command.carer_id)
        if command.carer_id is not None:
            await check_clash(tx, package, slot, command.carer_id, at=at)
        entry = await RotaEntry.create(using_db=tx.conn, package_id=package.id, carer_id=command.carer_id,
                                       weekdays=slot.weekdays, start=slot.start, length=slot.length)
        await _plan(tx, entry.id, package, at, slot.weekdays)
        await tx.audit(Actor(admin.id, client_address), "care.visit_scheduled", "rota_entry", entry.id,
                       package_id=package.id, carer_id=command.carer_id, weekdays=slot.weekdays,
                       start=clock(slot.start), length=slot.length)
        await _sync_visit_times(tx, package.id)
        await _emit(tx, admin, package.id, entry.id, "added", command.carer_id)
    return entry_out(entry, package, name)


async def _entry_for(admin: User, entry_id: int) -> tuple[RotaEntry, CarePackage]:
    entry = await RotaEntry.get_or_none(id=entry_id, is_active=True)
    if entry is None:
        raise NotFound(f"No visit with id {entry_id} on any rota.")
    return entry, await _changeable(admin, entry.package_id)


async def package_of(admin: User, entry_id: int) -> int:
    """The package a rota entry (active or not) belongs to, if the viewer may see it."""
    entry = await RotaEntry.get_or_none(id=entry_id)
    if entry is None:
        raise NotFound(f"No visit with id {entry_id} on any rota.")
    return (await _package_for(admin, entry.package_id)).id


async def do_change_visit(admin: User, entry_id: int, command: RotaEntryChange, client_address: str | None, *,
                          at: datetime) -> RotaEntryOut:
    entry, package = await _entry_for(admin, entry_id)
    given = command.model_fields_set
    carer_id = command.carer_id if "carer_id" in given else entry.carer_id
    slot = Slot("".join(str(d) for d in command.weekdays) if command.weekdays else entry.weekdays,
                clock_minutes(command.start) if command.start else entry.start, command.length or entry.length)
    previous = {"carer_id": entry.carer_id, "weekdays": entry.weekdays, "start": clock(entry.start),
                "length": entry.length}
    async with atomic() as tx:
        name = await _check_carer(tx, package, carer_id)
        if carer_id is not None:
            await check_clash(tx, package, slot, carer_id, at=at, entry_id=entry.id)
        updated = await RotaEntry.filter(id=entry.id, is_active=True).using_db(tx.conn).update(
            carer_id=carer_id, weekdays=slot.weekdays, start=slot.start, length=slot.length, updated_at=at)
        if not updated:
            raise NotFound(f"No visit with id {entry_id} on any rota.")
        if slot.weekdays != entry.weekdays:
            await _plan(tx, entry.id, package, at, slot.weekdays)
        await tx.audit(Actor(admin.id, client_address), "care.visit_changed", "rota_entry", entry.id,
                       previous=previous, carer_id=carer_id, weekdays=slot.weekdays, start=clock(slot.start),
                       length=slot.length)
        await _sync_visit_times(tx, package.id)
        await _emit(tx, admin, package.id, entry.id, "changed", entry.carer_id, carer_id)
    entry.carer_id, entry.weekdays, entry.start, entry.length = carer_id, slot.weekdays, slot.start, slot.length
    return entry_out(entry, package, name)


def clock_minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


async def do_remove_visit(admin: User, entry_id: int, client_address: str | None, *, at: datetime) -> None:
    """End an entry: no more visits from it; those recorded against it stay."""
    entry, package = await _entry_for(admin, entry_id)
    async with atomic() as tx:
        removed = await RotaEntry.filter(id=entry.id, is_active=True).using_db(tx.conn).update(
            is_active=False, updated_at=at)
        if not removed:
            raise NotFound(f"No visit with id {entry_id} on any rota.")
        await _plan(tx, entry.id, package, at, "")
        await tx.audit(Actor(admin.id, client_address), "care.visit_removed", "rota_entry", entry.id,
                       package_id=package.id)
        await _sync_visit_times(tx, package.id)
        await _emit(tx, admin, package.id, entry.id, "removed", entry.carer_id)


async def planned_visits(package_ids: list[int], first: date, last: date) -> dict[tuple[int, date], int]:
    """How many visits each package's rota planned on each of its dates `first` to `last`, as the
    rota stood on that day (each entry's RotaPlan history: a visit removed or moved today leaves
    the days before it as they were). Only the days it runs; a day with none is left out. Three
    queries whatever the span."""
    if not package_ids:
        return {}
    packages = {p.id: p for p in await CarePackage.filter(id__in=package_ids)}
    entries = list(await RotaEntry.filter(package_id__in=list(packages)))
    plans: dict[int, list[tuple[date, str]]] = {}
    for entry_id, effective_on, weekdays in await RotaPlan.filter(entry_id__in=[e.id for e in entries] or [0]) \
            .order_by("entry_id", "effective_on", "id").values_list("entry_id", "effective_on", "weekdays"):
        plans.setdefault(int(entry_id), []).append((effective_on, str(weekdays)))
    counts: Counter[tuple[int, date]] = Counter()
    for entry in entries:
        package = packages[entry.package_id]
        # An entry without history (none should be) stands as it is from the package's start.
        history = plans.get(entry.id) or [(package.starts_on, entry.weekdays if entry.is_active else "")]
        day, stop = max(first, package.starts_on), min(last, package.ends_on) if package.ends_on else last
        index, weekdays = 0, ""
        while day <= stop:
            while index < len(history) and history[index][0] <= day:
                weekdays, index = history[index][1], index + 1
            if str(day.isoweekday()) in weekdays:
                counts[(entry.package_id, day)] += 1
            day += timedelta(days=1)
    return dict(counts)
