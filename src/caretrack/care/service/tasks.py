"""Tasks with targets and due windows: created, changed, reassigned or ended by an admin; the
carers they concern see each change live. A task goes only to a carer on its package. A carer
reaches only the tasks assigned to them on packages they can see.

A task may need a competency (a skill of caretrack.assessments). Assigning it to a carer who does
not hold that skill current is allowed, and the admin is warned (`task_warnings`); until the
carer holds it, the task shows as blocked, with why (`blocked_tasks`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from caretrack.accounts.models import User
from caretrack.assessments.service import check_carer, check_skill, competence_gaps
from caretrack.care.models import CarePackage, CareTask, Period
from caretrack.care.schedule import clock, visit_times
from caretrack.care.schemas import TaskChange, TaskIn
from caretrack.care.service import targets
from caretrack.care.service.packages import _changeable, can_see_package, check_on_package
from caretrack.core.audit.service import Actor
from caretrack.core.clock import utcnow
from caretrack.core.errors import NotFound, ValidationError
from caretrack.core.roles import Role
from caretrack.core.transaction import atomic

NO_SCHEDULE = "This package has no visit schedule, so a task cannot be counted per visit."


def task_payload(task: CareTask) -> dict[str, Any]:
    return {"task_id": task.id, "package_id": task.package_id, "title": task.title, "target": task.target,
            "period": str(task.period), "window": f"{clock(task.window_start)}–{clock(task.window_end)}"}


async def do_create_task(admin: User, package_id: int, command: TaskIn, client_address: str | None,
                         at: datetime | None = None) -> CareTask:
    """Add a task; its target counts from the package's date at `at` (its history's first row)."""
    at = at or utcnow()
    package = await _changeable(admin, package_id)
    carer = await check_carer(command.carer_id)
    await check_on_package(package.id, carer)
    if command.period == Period.VISIT and not visit_times(package):
        raise ValidationError(NO_SCHEDULE)
    window_start, window_end = command.window()
    skill = await check_skill(command.required_skill_id) if command.required_skill_id is not None else None
    async with atomic() as tx:
        task = await CareTask.create(using_db=tx.conn, package_id=package.id, carer_id=carer.id, title=command.title,
                                     target=command.target, period=Period(command.period),
                                     window_start=window_start, window_end=window_end,
                                     required_skill_id=skill.id if skill else None, created_at=at)
        await targets.record(tx.conn, task, package, at)
        await tx.audit(Actor(admin.id, client_address), "care.task_created", "care_task", task.id,
                       carer_id=carer.id, title=task.title)
        await tx.emit("task.assigned", actor_id=admin.id, subject=("care_task", task.id),
                      data=task_payload(task), users=[carer.id])
    return task


async def _task_for(viewer: User, task_id: int, *, active: bool = False) -> CareTask:
    task = await CareTask.get_or_none(id=task_id)
    if task is None or (active and not task.is_active) or (viewer.role != Role.ADMIN and (
            task.carer_id != viewer.id or task.needs_carer or not await can_see_package(viewer, task.package_id))):
        raise NotFound(f"No task with id {task_id}.")
    return task


async def get_task(viewer: User, task_id: int) -> CareTask:
    return await _task_for(viewer, task_id)


async def task_package(viewer: User, task_id: int) -> tuple[CareTask, CarePackage]:
    """A task the viewer may reach and the package whose clock it runs on."""
    task = await _task_for(viewer, task_id)
    return task, await CarePackage.get(id=task.package_id)


async def do_update_task(admin: User, task_id: int, command: TaskChange, client_address: str | None,
                         at: datetime | None = None) -> CareTask:
    """Change a task's details, reassign it to another carer on its package, or end it
    (is_active false). The carers it concerns see the change live. A new target, period or end
    counts from the package's date at `at` (the whole of that day)."""
    at = at or utcnow()
    task = await _task_for(admin, task_id)
    package = await _changeable(admin, task.package_id)
    before = targets.state_of(task)
    changes: dict[str, Any] = command.model_dump(include={"title", "target", "is_active"}, exclude_none=True)
    if command.period is not None:
        changes["period"] = Period(command.period)
    if (window := command.window()) is not None:
        changes["window_start"], changes["window_end"] = window
    new_carer = await check_carer(command.carer_id) if command.carer_id is not None else None
    old_carer_id, was_flagged = task.carer_id, task.needs_carer
    if new_carer is not None and (new_carer.id != task.carer_id or task.needs_carer):
        await check_on_package(task.package_id, new_carer)
        changes["carer_id"], changes["needs_carer"] = new_carer.id, False
    if "required_skill_id" in command.model_fields_set and command.required_skill_id != task.required_skill_id:
        skill_id = command.required_skill_id
        changes["required_skill_id"] = (await check_skill(skill_id)).id if skill_id is not None else None
    if changes.get("period") == Period.VISIT and not visit_times(package):
        raise ValidationError(NO_SCHEDULE)
    if not changes:
        return task
    async with atomic() as tx:
        await CareTask.filter(id=task.id).using_db(tx.conn).update(**changes)
        await task.refresh_from_db(using_db=tx.conn)
        if targets.state_of(task) != before:
            await targets.record(tx.conn, task, package, at)
        await tx.audit(Actor(admin.id, client_address), "care.task_changed", "care_task", task.id,
                       fields=sorted(changes), previous_carer_id=old_carer_id)
        payload = task_payload(task)
        subject = ("care_task", task.id)
        if not task.is_active:
            await tx.emit("task.removed", actor_id=admin.id, subject=subject, data=payload, users=[old_carer_id])
        elif "carer_id" in changes:
            if not was_flagged:  # a flagged task was taken from its carer when they left
                await tx.emit("task.removed", actor_id=admin.id, subject=subject, data=payload, users=[old_carer_id])
            await tx.emit("task.assigned", actor_id=admin.id, subject=subject, data=payload, users=[task.carer_id])
        else:
            await tx.emit("task.updated", actor_id=admin.id, subject=subject, data=payload, users=[task.carer_id])
    return task


# (task id, carer id, required skill id): what the gate needs of a task, a row or its API view.
Need = tuple[int, int, int | None]


async def blocked_tasks(tasks: Iterable[Need], at: datetime) -> dict[int, str]:
    """Why each task whose carer does not hold its required skill current at `at` is blocked:
    {task id: 'Needs Medication competency — expired on 2026-11-20'}. Two queries for any number
    of tasks (none when no task needs a skill)."""
    needing = [(task_id, (carer_id, skill_id)) for task_id, carer_id, skill_id in tasks if skill_id is not None]
    gaps = await competence_gaps([need for _, need in needing], at)
    return {task_id: gaps[need].reason for task_id, need in needing if need in gaps}


async def task_warnings(task: CareTask, at: datetime) -> list[str]:
    """What the admin who saved a task should know: its carer cannot do it yet."""
    if not task.is_active:
        return []
    blocked = await blocked_tasks([(task.id, task.carer_id, task.required_skill_id)], at)
    if task.id not in blocked:
        return []
    carer = await User.get(id=task.carer_id)
    return [f"Saved, but {carer.full_name} cannot do “{task.title}” yet. {blocked[task.id]}."]
