"""A carer leaving a package: removed, or replaced by another carer. Their active tasks on the
package never stay silently with someone who can no longer see the client: they go to the
replacement, or to a carer on the package named in the same request, or else they are flagged
as needing a carer (nobody can log them until an admin reassigns them). The leaving carer's
pending visit reminders are cancelled, as on any unassignment. Their visits on the rota go with
their tasks: to the carer taking over (refused, 409, where it would clash with that carer's own
visits), or else to nobody, which the office sees on the package's rota."""

from __future__ import annotations

from datetime import datetime

from caretrack.accounts.models import User
from caretrack.assessments.service import check_carer
from caretrack.care.clashes import Slot, check_clash
from caretrack.care.models import CarePackage, CareTask, PackageCarer, RotaEntry
from caretrack.care.service.packages import _announce, _changeable, _put_on, _take_off, check_on_package
from caretrack.care.service.tasks import task_payload
from caretrack.core.audit.service import Actor
from caretrack.core.clock import utcnow
from caretrack.core.errors import NotFound, ValidationError
from caretrack.core.transaction import Tx, atomic


async def _leaving(package: CarePackage, carer_id: int) -> User:
    carer = await User.get_or_none(id=carer_id)
    if carer is None or not await PackageCarer.exists(package_id=package.id, carer_id=carer_id):
        raise NotFound(f"Carer {carer_id} is not assigned to this package.")
    return carer


def _other(leaving: User, taker: User) -> None:
    if taker.id == leaving.id:
        raise ValidationError(f"{leaving.full_name} is the carer leaving; choose someone else to take over.",
                              fields=[{"field": "carer_id", "message": "the carer leaving"}])


async def _hand_over(tx: Tx, admin: User, package: CarePackage, leaving: User, taker: User | None) -> list[int]:
    """Move the leaving carer's active tasks to `taker`, or flag them as needing a carer."""
    tasks = list(await CareTask.filter(package_id=package.id, carer_id=leaving.id, is_active=True)
                 .using_db(tx.conn).order_by("id"))
    for task in tasks:
        if taker is not None:
            task.carer_id, task.needs_carer = taker.id, False
        else:
            task.needs_carer = True
        await task.save(using_db=tx.conn, update_fields=["carer_id", "needs_carer", "updated_at"])
        subject = ("care_task", task.id)
        await tx.emit("task.removed", actor_id=admin.id, subject=subject, data=task_payload(task), users=[leaving.id])
        if taker is not None:
            await tx.emit("task.assigned", actor_id=admin.id, subject=subject, data=task_payload(task),
                          users=[taker.id])
    return [task.id for task in tasks]


async def _hand_over_visits(tx: Tx, admin: User, package: CarePackage, leaving: User, taker: User | None,
                            at: datetime) -> None:
    """Give the leaving carer's visits on the package's rota to `taker`, or to nobody."""
    entries = list(await RotaEntry.filter(package_id=package.id, carer_id=leaving.id, is_active=True)
                   .using_db(tx.conn).order_by("id"))
    for entry in entries:
        if taker is not None:
            await check_clash(tx, package, Slot(entry.weekdays, entry.start, entry.length), taker.id, at=at,
                              entry_id=entry.id)
        await RotaEntry.filter(id=entry.id).using_db(tx.conn).update(carer_id=taker.id if taker else None)
    if entries:
        await tx.emit("visit.rota_changed", actor_id=admin.id, subject=("care_package", package.id),
                      data={"package_id": package.id, "change": "handed over"},
                      users=sorted({leaving.id} | ({taker.id} if taker else set())))


async def do_remove_carer(admin: User, package_id: int, carer_id: int, tasks_to: int | None,
                          client_address: str | None, at: datetime | None = None) -> list[int]:
    """Take a carer off a package. Their active tasks go to `tasks_to` (a carer on the package)
    or, without one, are flagged as needing a carer. Returns the ids of those tasks."""
    package = await _changeable(admin, package_id)
    leaving = await _leaving(package, carer_id)
    taker = None
    if tasks_to is not None:
        taker = await check_carer(tasks_to)
        _other(leaving, taker)
        await check_on_package(package.id, taker)
    async with atomic() as tx:
        tasks = await _hand_over(tx, admin, package, leaving, taker)
        await _hand_over_visits(tx, admin, package, leaving, taker, at or utcnow())
        await _take_off(tx, admin, package, leaving.id)
        await tx.audit(Actor(admin.id, client_address), "care.carer_removed", "care_package", package.id,
                       carer_id=leaving.id, tasks=tasks, tasks_to=taker.id if taker else None,
                       needs_carer=bool(tasks) and taker is None)
        await _announce(tx, admin, "care.carer_removed", package, carer_id=leaving.id, carer_name=leaving.full_name,
                        tasks=len(tasks), tasks_to_name=taker.full_name if taker else None)
    return tasks


async def do_replace_carer(admin: User, package_id: int, carer_id: int, replacement_id: int,
                           client_address: str | None, at: datetime | None = None) -> list[int]:
    """Replace a carer on a package with another (added if not on it yet), who takes over their
    active tasks. Returns the ids of those tasks."""
    package = await _changeable(admin, package_id)
    leaving = await _leaving(package, carer_id)
    replacement = await check_carer(replacement_id)
    _other(leaving, replacement)
    async with atomic() as tx:
        if not await PackageCarer.filter(package_id=package.id, carer_id=replacement.id).using_db(tx.conn).exists():
            await _put_on(tx, admin, package, replacement)
        tasks = await _hand_over(tx, admin, package, leaving, replacement)
        await _hand_over_visits(tx, admin, package, leaving, replacement, at or utcnow())
        await _take_off(tx, admin, package, leaving.id)
        await tx.audit(Actor(admin.id, client_address), "care.carer_replaced", "care_package", package.id,
                       carer_id=leaving.id, replacement_id=replacement.id, tasks=tasks)
        await _announce(tx, admin, "care.carer_replaced", package, carer_id=leaving.id, carer_name=leaving.full_name,
                        replacement_id=replacement.id, replacement_name=replacement.full_name, tasks=len(tasks))
    return tasks
