"""Care packages: client details are PHI, sealed on write, and every read that unseals them is
audited. A carer reaches only the packages they are assigned to; anything else is 404, so ids
do not reveal what exists."""

from __future__ import annotations

from caretrack.accounts.models import User
from caretrack.assessments.service import check_carer
from caretrack.care.models import CarePackage, CareTask, PackageCarer, RotaEntry
from caretrack.care.rota import DEFAULT_LENGTH, EVERY_DAY
from caretrack.care.schedule import check_clock, visit_times
from caretrack.care.schemas import CarerOut, PackageIn, PackageOut, TaskOut
from caretrack.care.service.reminders import key_prefix
from caretrack.core import crypto
from caretrack.core.audit.service import Actor
from caretrack.core.errors import Conflict, NotFound
from caretrack.core.roles import Role
from caretrack.core.transaction import atomic

PACKAGE_PHI = ("client_name", "address", "care_notes")


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
            client_name=crypto.seal(command.client_name, "care_packages.client_name"),
            address=crypto.seal(command.address, "care_packages.address"),
            care_notes=crypto.seal(command.care_notes, "care_packages.care_notes"))
        for hhmm in command.visit_times:
            await RotaEntry.create(using_db=tx.conn, package_id=package.id, weekdays=EVERY_DAY,
                                   start=check_clock(hhmm, "visit time"), length=DEFAULT_LENGTH)
        actor = Actor(admin.id, client_address)
        await tx.audit(actor, "care.package_created", "care_package", package.id)
        await tx.audit(actor, "phi.write", "care_package", package.id, fields=list(PACKAGE_PHI))
    return package


async def _package_for(viewer: User, package_id: int) -> CarePackage:
    package = await CarePackage.get_or_none(id=package_id)
    if package is None or not await can_see_package(viewer, package_id):
        raise NotFound(f"No care package with id {package_id}.")
    return package


async def can_see_package(viewer: User, package_id: int) -> bool:
    if viewer.role == Role.ADMIN:
        return True
    return viewer.role == Role.CARER and await PackageCarer.exists(package_id=package_id, carer_id=viewer.id)


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
        tasks = tasks.filter(carer_id=viewer.id)
    return PackageOut(id=package.id, **details, starts_on=package.starts_on, ends_on=package.ends_on,
                      visit_times=visit_times(package), time_zone=package.time_zone,
                      carers=[CarerOut(id=c.id, full_name=c.full_name) for c in carers],
                      tasks=[TaskOut.of(t) for t in await tasks])


async def client_names(viewer: User, package_ids: list[int], client_address: str | None) -> dict[int, str]:
    """Clients' names for a list of packages the viewer may see (one audited PHI read)."""
    if not package_ids:
        return {}
    query = CarePackage.filter(id__in=package_ids)
    if viewer.role != Role.ADMIN:
        query = query.filter(carers__carer_id=viewer.id)
    rows = await query.distinct().values_list("id", "client_name")
    async with atomic() as tx:
        await tx.audit(Actor(viewer.id, client_address), "phi.read", "care_package", None,
                       fields=["client_name"], ids=sorted(r[0] for r in rows))
    return {pid: crypto.unseal(name, "care_packages.client_name") for pid, name in rows}


async def list_packages(viewer: User, client_address: str | None) -> list[tuple[CarePackage, str]]:
    query = CarePackage.all().order_by("-id")
    if viewer.role != Role.ADMIN:
        query = query.filter(carers__carer_id=viewer.id).distinct()
    packages = list(await query)
    names = await client_names(viewer, [p.id for p in packages], client_address)
    return [(p, names[p.id]) for p in packages]


async def do_assign_carer(admin: User, package_id: int, carer_id: int, client_address: str | None) -> None:
    package = await _package_for(admin, package_id)
    carer = await check_carer(carer_id)
    async with atomic() as tx:
        if await PackageCarer.filter(package_id=package.id, carer_id=carer.id).using_db(tx.conn).exists():
            return
        await PackageCarer.create(using_db=tx.conn, package_id=package.id, carer_id=carer.id)
        await tx.audit(Actor(admin.id, client_address), "care.carer_assigned", "care_package", package.id,
                       carer_id=carer.id)
        await tx.emit("care.package_assigned", actor_id=admin.id, subject=("care_package", package.id),
                      data={"package_id": package.id}, users=[carer.id])


async def do_unassign_carer(admin: User, package_id: int, carer_id: int, client_address: str | None) -> None:
    package = await _package_for(admin, package_id)
    if await CareTask.exists(package_id=package.id, carer_id=carer_id, is_active=True):
        raise Conflict("This carer still has tasks in the package; reassign or remove them first.")
    if await RotaEntry.exists(package_id=package.id, carer_id=carer_id, is_active=True):
        raise Conflict("This carer still has visits on the package's rota; reassign or remove them first.")
    async with atomic() as tx:
        deleted = await PackageCarer.filter(package_id=package.id, carer_id=carer_id).using_db(tx.conn).delete()
        if not deleted:
            raise NotFound(f"Carer {carer_id} is not assigned to this package.")
        await tx.audit(Actor(admin.id, client_address), "care.carer_unassigned", "care_package", package.id,
                       carer_id=carer_id)
        await tx.cancel_jobs(key_prefix(package.id, carer_id))  # their visit reminders
        await tx.emit("care.package_unassigned", actor_id=admin.id, subject=("care_package", package.id),
                      data={"package_id": package.id}, users=[carer_id])
