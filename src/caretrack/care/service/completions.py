"""Completions: a carer logs a task done or not done (a `CompletionIn`), once per idempotency key; a correction
is a new completion that supersedes the original, which stays, and the audit trail keeps what it
said. Notes are PHI, sealed on write; reading them is audited. A note marked for the office or the
next carer is also a handover note (caretrack.care.service.notes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError

from caretrack.accounts.models import User
from caretrack.care import zones
from caretrack.care.models import CarePackage, CareTask, CompletionStatus, TaskCompletion
from caretrack.care.schedule import clock
from caretrack.care.schemas import CompletionIn
from caretrack.care.service.notes import record_completion_note
from caretrack.care.service.tasks import _task_for, task_package, task_payload
from caretrack.core import crypto
from caretrack.core.audit.service import Actor
from caretrack.core.clock import utcnow
from caretrack.core.errors import Conflict, NotFound, ValidationError
from caretrack.core.roles import Role
from caretrack.core.transaction import Tx, atomic

# Devices' clocks drift: a completion this far ahead of the server's clock is still "now".
FUTURE_GRACE = timedelta(minutes=5)


def check_when(occurred_at: datetime | None, at: datetime) -> datetime:
    """When a completion happened: now when not given, else from 7 days back up to now."""
    if occurred_at is None:
        return at
    if occurred_at > at + FUTURE_GRACE:
        raise ValidationError("A task cannot be logged as done in the future.")
    if occurred_at < at - timedelta(days=7):
        raise ValidationError("A completion more than 7 days ago cannot be logged; ask an admin.")
    return occurred_at


def check_early(task: CareTask, package: CarePackage, status: str, when: datetime, early_logs: str) -> bool:
    """Whether a completion is early: done before the task's window opens on the package's
    clock. Refused unless the agency marks such logs (`early_logs` "mark"): then kept, never counted."""
    if status != CompletionStatus.DONE or zones.minute_of_day(package, when) >= task.window_start:
        return False
    if early_logs != "mark":
        raise ValidationError(f"The window for “{task.title}” opens at {clock(task.window_start)} "
                              f"({package.time_zone}).")
    return True


async def _existing(key: str, carer: User, task_id: int | None = None) -> TaskCompletion | None:
    existing = await TaskCompletion.get_or_none(idempotency_key=key)
    if existing is None:
        return None
    if existing.carer_id != carer.id or (task_id is not None and existing.task_id != task_id):
        raise Conflict("This idempotency key was already used for another request.")
    return existing


async def do_log_completion(carer: User, task_id: int, command: CompletionIn, *, client_address: str | None = None,
                            at: datetime | None = None,
                            early_logs: str = "refuse") -> tuple[TaskCompletion, bool]:
    """Record a completion once per idempotency key. Returns (completion, created). A retry
    keeps the first request's `occurred_at` (an offline tap sent later keeps its moment)."""
    task = await _task_for(carer, task_id, active=True)
    key = command.idempotency_key
    at = at or utcnow()
    when = check_when(command.occurred_at, at)
    if (existing := await _existing(key, carer, task.id)) is not None:
        return existing, False
    early = check_early(task, await CarePackage.get(id=task.package_id), command.status, when, early_logs)
    try:
        async with atomic() as tx:
            completion = await TaskCompletion.create(
                using_db=tx.conn, task_id=task.id, carer_id=carer.id, idempotency_key=key,
                status=CompletionStatus(command.status), reason=command.reason, occurred_at=when, early=early,
                note=crypto.seal(command.note, "task_completions.note"))
            actor = Actor(carer.id, client_address)
            await tx.audit(actor, "care.task_logged", "task_completion", completion.id, task_id=task.id,
                           status=command.status, **({"early": True} if early else {}))
            if command.note:
                await tx.audit(actor, "phi.write", "task_completion", completion.id, fields=["note"])
            await _emit_completion(tx, carer, task, completion)
            await record_completion_note(tx, actor, carer, task, completion, command)
    except IntegrityError:
        # The same key raced in from a parallel retry: the other request recorded it.
        existing = await _existing(key, carer, task.id)
        if existing is None:
            raise
        return existing, False
    return completion, True


async def _emit_completion(tx: Tx, carer: User, task: CareTask, completion: TaskCompletion,
                           corrected: bool = False) -> None:
    data = {**task_payload(task), "completion_id": completion.id, "status": str(completion.status),
            "reason": completion.reason, "carer_name": carer.full_name, "corrected": corrected,
            "occurred_at": completion.occurred_at, "early": completion.early}
    await tx.emit("task.completed", actor_id=carer.id, subject=("care_task", task.id), data=data,
                  roles=[Role.ADMIN], users=[carer.id])


async def do_correct_completion(carer: User, completion_id: int, command: CompletionIn, *,
                                client_address: str | None = None, at: datetime | None = None,
                                early_logs: str = "refuse") -> tuple[TaskCompletion, bool]:
    """Replace a completion with a corrected one; the original stays, marked superseded, and
    the audit trail records what it said."""
    at = at or utcnow()
    original = await TaskCompletion.get_or_none(id=completion_id)
    if original is None or original.carer_id != carer.id:
        raise NotFound(f"No completion with id {completion_id}.")
    key = command.idempotency_key
    if (existing := await _existing(key, carer, original.task_id)) is not None:
        return existing, False
    if original.superseded_at is not None:
        raise Conflict(f"Completion {completion_id} was already corrected; correct the newest version.")
    task, package = await task_package(carer, original.task_id)
    when = check_when(command.occurred_at or original.occurred_at, at)
    early = check_early(task, package, command.status, when, early_logs)
    try:
        async with atomic() as tx:
            updated = await TaskCompletion.filter(id=original.id, superseded_at__isnull=True).using_db(
                tx.conn).update(superseded_at=at)
            if not updated:
                raise Conflict(f"Completion {completion_id} was already corrected; correct the newest version.")
            completion = await TaskCompletion.create(
                using_db=tx.conn, task_id=task.id, carer_id=carer.id, idempotency_key=key, corrects_id=original.id,
                status=CompletionStatus(command.status), reason=command.reason, occurred_at=when, early=early,
                note=crypto.seal(command.note, "task_completions.note"))
            actor = Actor(carer.id, client_address)
            await tx.audit(actor, "care.task_corrected", "task_completion", completion.id, corrects=original.id,
                           original_status=str(original.status), original_reason=original.reason,
                           original_occurred_at=original.occurred_at.isoformat())
            if command.note:
                await tx.audit(actor, "phi.write", "task_completion", completion.id, fields=["note"])
            await _emit_completion(tx, carer, task, completion, corrected=True)
            await record_completion_note(tx, actor, carer, task, completion, command)
    except IntegrityError:
        existing = await _existing(key, carer, task.id)
        if existing is None:
            raise
        return existing, False
    return completion, True


@dataclass
class CompletionView:
    completion: TaskCompletion
    note: str | None


async def list_completions(viewer: User, task_id: int, client_address: str | None,
                           limit: int = 50) -> list[CompletionView]:
    """A task's completions, newest first, superseded ones included (marked)."""
    task = await _task_for(viewer, task_id)
    rows = list(await TaskCompletion.filter(task_id=task.id).order_by("-occurred_at", "-id").limit(limit))
    with_notes = [r.id for r in rows if r.note]
    if with_notes:
        async with atomic() as tx:
            await tx.audit(Actor(viewer.id, client_address), "phi.read", "task_completion", None,
                           fields=["note"], ids=with_notes)
    return [CompletionView(r, crypto.unseal(r.note, "task_completions.note")) for r in rows]
