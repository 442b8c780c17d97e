"""Care packages: client details are PHI, sealed on write, and every read that unseals them is
audited. A carer reaches only the packages they are assigned to that are not archived; anything
else is 404, so ids do not reveal what exists. An archived package is read-only for admins.

Each change reaches the package's carers live and the admins' activity feed (`care.…` events)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from caretrack.accounts.models import User
from caretrack.assessments.service import check_carer
from caretrack.care import zones
from caretrack.care.clashes import Slot, check_clash
from caretrack.care.models import CarePackage, CareTask, PackageCarer, RotaEntry, RotaPlan
from caretrack.care.rota import DEFAULT_LENGTH, EVERY_DAY
from caretrack.care.schedule import check_clock, visit_times
from caretrack.care.schemas import CarerOut, PackageChange, PackageEnd, PackageIn, PackageOut, TaskOut, check_dates
from caretrack.care.service.reminders import key_prefix
from caretrack.core import crypto
from caretrack.core.audit.service import Actor
from caretrack.core.clock import utcnow
from caretrack.core.errors import Conflict, NotFound, ValidationError
from caretrack.core.roles import Role
from caretrack.core.transaction import Tx, atomic

PACKAGE_PHI = ("client_name", "address", "care_notes", "access_notes", "allergies", "next_of_kin_name",
               "next_of_kin_relationship", "next_of_kin_phone", "gp_practice", "gp_phone")


def _seal(field: str, value: str | None) -> str | None:
    return crypto.seal(value, f"care_packages.{field}")


async def do_create_package(admin: User, command: PackageIn, client_address: str | None,
                            default_zone: str = "UTC") -> CarePackage:
    """A new package, on the zone the command names or else `default_zone` (the agency's). Its
    visit times go on its rota as daily visits of DEFAULT_LENGTH minutes that nobody is assigned
    to yet (the admin gives each a carer on the package page)."""
    async with atomic() as tx:
        package = await CarePackage.create(
            using_db=tx.conn, starts_on=command.starts_on, ends_on=command.ends_on,
            time_zone=command.time_zone or default_zone,
            visit_times=",".join(command.visit_times), created_by_id=admin.id,
            **{f: _seal(f, getattr(command, f)) for f in PACKAGE_PHI})
        for hhmm in command.visit_times:
            entry = await RotaEntry.create(using_db=tx.conn, package_id=package.id, weekdays=EVERY_DAY,
                                           start=check_clock(hhmm, "visit time"), length=DEFAULT_LENGTH)
            # visits given with the package are part of it from its first day
            await RotaPlan.create(using_db=tx.conn, entry_id=entry.id, effective_on=package.starts_on,
                                  weekdays=EVERY_DAY)
        actor = Actor(admin.id, client_address)
        await tx.audit(actor, "care.package_created", "care_package", package.id)
        await tx.audit(actor, "phi.write", "care_package", package.id, fields=list(PACKAGE_PHI))
    return package


async def _package_for(viewer: User, package_id: int) -> CarePackage:
    package = await CarePackage.get_or_none(id=package_id)
    if package is None or not await can_see_package(viewer, package_id):
        raise NotFound(f"No care package with id {package_id}.")
    return package


async def package_for(viewer: User, package_id: int) -> CarePackage:
    """A package the viewer may see, its client's details still sealed (nothing is read)."""
    return await _package_for(viewer, package_id)


async def _changeable(admin: User, package_id: int) -> CarePackage:
    """A package the admin may change: it exists and is not archived."""
    package = await _package_for(admin, package_id)
    if package.archived_at is not None:
        raise Conflict(f"Care package {package_id} is archived, so it cannot be changed; unarchive it first.")
    return package


async def can_see_package(viewer: User, package_id: int) -> bool:
    if viewer.role == Role.ADMIN:
        return True
    return viewer.role == Role.CARER and await PackageCarer.exists(
        package_id=package_id, carer_id=viewer.id, package__archived_at__isnull=True)


async def check_on_package(package_id: int, carer: User) -> None:
    """A task goes only to a carer on its package (who can see the client)."""
    if not await PackageCarer.exists(package_id=package_id, carer_id=carer.id):
        raise ValidationError(f"{carer.full_name} is not on this package; add them first.",
                              fields=[{"field": "carer_id", "message": "not on this package"}])


async def carer_ids(package_id: int, tx: Tx | None = None) -> list[int]:
    """The carers on a package now: the recipients of its live changes."""
    query = PackageCarer.filter(package_id=package_id).order_by("id")
    if tx is not None:
        query = query.using_db(tx.conn)
    rows: list[Any] = await query.values_list("carer_id", flat=True)
    return [int(c) for c in rows]


async def get_package(viewer: User, package_id: int, client_address: str | None) -> PackageOut:
    """A package with its client's details (a PHI read, audited)."""
    package = await _package_for(viewer, package_id)
    async with atomic() as tx:
        await tx.audit(Actor(viewer.id, client_address), "phi.read", "care_package", package.id,
                       fields=list(PACKAGE_PHI))
    details = {f: crypto.unseal(getattr(package, f), f"care_packages.{f}") for f in PACKAGE_PHI}
    carers = [pc.carer for pc in await PackageCarer.filter(package_id=package.id)
              .prefetch_related("carer").order_by("id")]
    tasks = CareTask.filter(package_id=package.id, is_active=True).order_by("id")
    if viewer.role == Role.CARER:
        tasks = tasks.filter(carer_id=viewer.id, needs_carer=False)
    return PackageOut(id=package.id, **details, starts_on=package.starts_on, ends_on=package.ends_on,
                      visit_times=visit_times(package), time_zone=package.time_zone,
                      archived_at=package.archived_at,
                      carers=[CarerOut(id=c.id, full_name=c.full_name) for c in carers],
                      tasks=[TaskOut.of(t) for t in await tasks])


async def client_names(viewer: User, package_ids: list[int], client_address: str | None) -> dict[int, str]:
    """Clients' names for a list of packages the viewer may see (one audited PHI read)."""
    if not package_ids:
        return {}
    query = CarePackage.filter(id__in=package_ids)
    if viewer.role != Role.ADMIN:
        query = query.filter(carers__carer_id=viewer.id, archived_at__isnull=True)
    rows = await query.distinct().values_list("id", "client_name")
    async with atomic() as tx:
        await tx.audit(Actor(viewer.id, client_address), "phi.read", "care_package", None,
                       fields=["client_name"], ids=sorted(r[0] for r in rows))
    return {pid: crypto.unseal(name, "care_packages.client_name") for pid, name in rows}


async def list_packages(viewer: User, client_address: str | None,
                        archived: bool = False) -> list[tuple[CarePackage, str]]:
    """The packages not archived (an admin may ask for the archived ones instead); a carer's own."""
    query = CarePackage.filter(archived_at__isnull=not (archived and viewer.role == Role.ADMIN)).order_by("-id")
    if viewer.role != Role.ADMIN:
        query = query.filter(carers__carer_id=viewer.id).distinct()
    packages = list(await query)
    names = await client_names(viewer, [p.id for p in packages], client_address)
    return [(p, names[p.id]) for p in packages]


async def do_assign_carer(admin: User, package_id: int, carer_id: int, client_address: str | None) -> None:
    package = await _changeable(admin, package_id)
    carer = await check_carer(carer_id)
    async with atomic() as tx:
        if await PackageCarer.filter(package_id=package.id, carer_id=carer.id).using_db(tx.conn).exists():
            return
        await _put_on(tx, admin, package, carer)
        await tx.audit(Actor(admin.id, client_address), "care.carer_assigned", "care_package", package.id,
                       carer_id=carer.id)


async def _put_on(tx: Tx, admin: User, package: CarePackage, carer: User) -> None:
    await PackageCarer.create(using_db=tx.conn, package_id=package.id, carer_id=carer.id)
    await tx.emit("care.package_assigned", actor_id=admin.id, subject=("care_package", package.id),
                  data={"package_id": package.id}, users=[carer.id])


async def _take_off(tx: Tx, admin: User, package: CarePackage, carer_id: int) -> None:
    """The carer leaves the package: their pending visit reminders are cancelled."""
    deleted = await PackageCarer.filter(package_id=package.id, carer_id=carer_id).using_db(tx.conn).delete()
    if not deleted:
        raise NotFound(f"Carer {carer_id} is not assigned to this package.")
    await tx.cancel_jobs(key_prefix(package.id, carer_id))  # their visit reminders
    await tx.emit("care.package_unassigned", actor_id=admin.id, subject=("care_package", package.id),
                  data={"package_id": package.id}, users=[carer_id])


async def do_unassign_carer(admin: User, package_id: int, carer_id: int, client_address: str | None) -> None:
    package = await _changeable(admin, package_id)
    if await CareTask.exists(package_id=package.id, carer_id=carer_id, is_active=True, needs_carer=False):
        raise Conflict("This carer still has tasks in the package; reassign or remove them first.")
    if await RotaEntry.exists(package_id=package.id, carer_id=carer_id, is_active=True):
        raise Conflict("This carer still has visits on the package's rota; reassign or remove them first.")
    async with atomic() as tx:
        await _take_off(tx, admin, package, carer_id)
        await tx.audit(Actor(admin.id, client_address), "care.carer_unassigned", "care_package", package.id,
                       carer_id=carer_id)


# --- the package's lifecycle -----------------------------------------------------------------


async def _announce(tx: Tx, admin: User, event: str, package: CarePackage, **data: Any) -> None:
    """A change of the package, to its carers (their screens refresh) and the admins' feed.
    No client details: events are not sealed."""
    await tx.emit(event, actor_id=admin.id, subject=("care_package", package.id),
                  data={"package_id": package.id, **data}, users=await carer_ids(package.id, tx), roles=[Role.ADMIN])


# Fields that move the real times of the package's visits, or the days they run on.
VISIT_TIMING = frozenset({"time_zone", "starts_on", "ends_on"})


async def do_update_package(admin: User, package_id: int, command: PackageChange,
                            client_address: str | None, at: datetime | None = None) -> CarePackage:
    """Change the fields the command gives; the dates must stay in order with the ones stored. A
    new zone or longer dates must not make a carer's visits here overlap their others (409)."""
    package = await _changeable(admin, package_id)
    changes = command.given()
    check_dates(changes.get("starts_on", package.starts_on), changes.get("ends_on", package.ends_on))
    if not changes:
        return package
    phi = sorted(set(changes) & set(PACKAGE_PHI))
    row = {name: _seal(name, value) if name in phi else value for name, value in changes.items()}
    async with atomic() as tx:
        await CarePackage.filter(id=package.id).using_db(tx.conn).update(**row)
        if VISIT_TIMING & set(changes):
            await _recheck_visits(tx, package.id, at or utcnow())
        actor = Actor(admin.id, client_address)
        await tx.audit(actor, "care.package_updated", "care_package", package.id, fields=sorted(changes))
        if phi:
            await tx.audit(actor, "phi.write", "care_package", package.id, fields=phi)
        await _announce(tx, admin, "care.package_updated", package, fields=sorted(changes))
    await package.refresh_from_db()
    return package


async def _recheck_visits(tx: Tx, package_id: int, at: datetime) -> None:
    package = await CarePackage.filter(id=package_id).using_db(tx.conn).get()
    for entry in await RotaEntry.filter(package_id=package_id, is_active=True, carer_id__isnull=False).using_db(
            tx.conn).order_by("id"):
        assert entry.carer_id is not None
        await check_clash(tx, package, Slot(entry.weekdays, entry.start, entry.length), entry.carer_id, at=at,
                          entry_id=entry.id)


async def do_end_package(admin: User, package_id: int, command: PackageEnd, client_address: str | None) -> CarePackage:
    """The package ends after `ends_on`: from the next day it is off its carers' day and its
    targets stop counting."""
    package = await _changeable(admin, package_id)
    check_dates(package.starts_on, command.ends_on)
    previous = package.ends_on
    async with atomic() as tx:
        await CarePackage.filter(id=package.id).using_db(tx.conn).update(ends_on=command.ends_on)
        await tx.audit(Actor(admin.id, client_address), "care.package_ended", "care_package", package.id,
                       ends_on=command.ends_on.isoformat(), previous_ends_on=previous.isoformat() if previous else None)
        await _announce(tx, admin, "care.package_ended", package, ends_on=command.ends_on.isoformat())
    package.ends_on = command.ends_on
    return package


async def do_archive_package(admin: User, package_id: int, client_address: str | None,
                             at: datetime | None = None) -> CarePackage:
    """Archive an ended package: hidden from the lists and from its carers, read-only for admins.
    Its carers' pending visit reminders are cancelled."""
    at = at or utcnow()
    package = await _package_for(admin, package_id)
    if package.archived_at is not None:
        return package
    today = zones.today(package, at)
    if package.ends_on is None or package.ends_on > today:
        until = f"until {package.ends_on}" if package.ends_on else "with no end date"
        raise Conflict(f"Care package {package.id} is still running ({until}); end it first, then archive it.")
    async with atomic() as tx:
        await CarePackage.filter(id=package.id).using_db(tx.conn).update(archived_at=at)
        for carer_id in await carer_ids(package.id, tx):
            await tx.cancel_jobs(key_prefix(package.id, carer_id), at=at)
        await tx.audit(Actor(admin.id, client_address), "care.package_archived", "care_package", package.id)
        await _announce(tx, admin, "care.package_archived", package)
    package.archived_at = at
    return package


async def do_unarchive_package(admin: User, package_id: int, client_address: str | None) -> CarePackage:
    package = await _package_for(admin, package_id)
    if package.archived_at is None:
        return package
    async with atomic() as tx:
        await CarePackage.filter(id=package.id).using_db(tx.conn).update(archived_at=None)
        await tx.audit(Actor(admin.id, client_address), "care.package_unarchived", "care_package", package.id)
        await _announce(tx, admin, "care.package_unarchived", package)
    package.archived_at = None
    return package
