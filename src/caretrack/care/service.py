"""Care packages, tasks and completions. Every action is one transaction with its audit rows
and live events; `check_…` functions validate and raise domain errors. Client details are
PHI: sealed on write, and every read that unseals them is audited.

Ownership lives here: a carer reaches only packages they are assigned to and tasks assigned
to them; anything else is 404, so ids do not reveal what exists."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from tortoise import connections
from tortoise.exceptions import IntegrityError

from caretrack.accounts.models import User
from caretrack.care.models import (
    CarePackage,
    CareTask,
    CompletionStatus,
    MissedTask,
    PackageCarer,
    Period,
    TaskCompletion,
)
from caretrack.core import crypto
from caretrack.core.audit.service import Actor
from caretrack.core.errors import Conflict, NotFound, ValidationError
from caretrack.core.roles import Role
from caretrack.core.transaction import atomic
from caretrack.core.validation import id_from_text

PACKAGE_PHI = ("client_name", "address", "care_notes")
KEY_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
TIME_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
NOT_DONE_REASONS = ("Client declined", "Client not at home", "Not needed today", "Supplies ran out", "Other")
MAX_PERIOD_DAYS = 366
# Devices' clocks drift: a completion this far ahead of the server's clock is still "now".
FUTURE_GRACE = timedelta(minutes=5)


def now() -> datetime:
    return datetime.now(UTC)


# --- validation ------------------------------------------------------------------------------


def check_text(value: Any, what: str, *, max_length: int, required: bool = True) -> str | None:
    text = ("" if value is None else str(value)).strip()
    if not text:
        if required:
            raise ValidationError(f"The {what} is required.")
        return None
    if len(text) > max_length:
        raise ValidationError(f"The {what} is longer than {max_length} characters.")
    return text


def check_date(value: Any, what: str, *, required: bool = True) -> date | None:
    if isinstance(value, date):
        return value
    text = ("" if value is None else str(value)).strip()
    if not text:
        if required:
            raise ValidationError(f"The {what} is required (YYYY-MM-DD).")
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"The {what} '{text[:20]}' is not a date (YYYY-MM-DD).") from None


def check_clock(value: Any, what: str) -> int:
    """'HH:MM' -> minutes after midnight."""
    text = str(value or "").strip()
    if text == "24:00":
        return 24 * 60
    match = TIME_RE.match(text)
    if not match:
        raise ValidationError(f"The {what} '{text[:10]}' is not a time of day (HH:MM).")
    return int(match.group(1)) * 60 + int(match.group(2))


def clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def check_visit_times(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        parts = [str(p) for p in value]
    else:
        parts = [p for p in re.split(r"[,\s]+", str(value or "")) if p]
    minutes = sorted({check_clock(p, "visit time") for p in parts})
    if len(minutes) > 12:
        raise ValidationError("A schedule has at most 12 visits a day.")
    return ",".join(clock(m) for m in minutes)


def visit_times(package: CarePackage) -> list[str]:
    return [t for t in package.visit_times.split(",") if t]


def check_period(start: date, end: date) -> None:
    if end < start:
        raise ValidationError(f"The period ends ({end}) before it starts ({start}).")
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise ValidationError(f"A period is at most {MAX_PERIOD_DAYS} days.")


async def check_carer(carer_id: Any) -> User:
    """The active carer a form or an API body names (an id as text or a number, bounded before any query)."""
    carer_id = id_from_text("" if carer_id is None else str(carer_id).strip(), "carer_id")
    if carer_id is None:
        raise ValidationError("Choose a carer.", fields=[{"field": "carer_id", "message": "missing"}])
    carer = await User.get_or_none(id=carer_id, role=Role.CARER, is_active=True)
    if carer is None:
        raise ValidationError(f"There is no active carer with id {carer_id}.")
    return carer


def check_task_fields(data: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not partial or "title" in data:
        out["title"] = check_text(data.get("title"), "task title", max_length=120)
    if not partial or "target" in data:
        try:
            target = int(data.get("target"))
        except (TypeError, ValueError):
            raise ValidationError(f"The target '{str(data.get('target'))[:20]}' is not a whole number.") from None
        if not 1 <= target <= 50:
            raise ValidationError(f"The target must be between 1 and 50, not {target}.")
        out["target"] = target
    if not partial or "period" in data:
        try:
            out["period"] = Period(str(data.get("period")))
        except ValueError:
            raise ValidationError(
                f"The period '{str(data.get('period'))[:20]}' is not one of: day, visit, week.") from None
    if not partial or "window_start" in data or "window_end" in data:
        start = check_clock(data.get("window_start") or "00:00", "window start")
        end = check_clock(data.get("window_end") or "24:00", "window end")
        if end <= start:
            raise ValidationError(f"The due window ends ({clock(end)}) before it starts ({clock(start)}).")
        out["window_start"], out["window_end"] = start, end
    return out


# --- packages --------------------------------------------------------------------------------


@dataclass
class PackageView:
    id: int
    client_name: str
    address: str | None
    care_notes: str | None
    starts_on: date
    ends_on: date | None
    visit_times: list[str]
    carers: list[User] = field(default_factory=list)
    tasks: list[CareTask] = field(default_factory=list)


async def do_create_package(admin: User, data: dict[str, Any], client_address: str | None) -> CarePackage:
    name = check_text(data.get("client_name"), "client's name", max_length=200)
    address = check_text(data.get("address"), "address", max_length=500, required=False)
    notes = check_text(data.get("care_notes"), "care notes", max_length=4000, required=False)
    starts = check_date(data.get("starts_on"), "start date")
    ends = check_date(data.get("ends_on"), "end date", required=False)
    if ends is not None and ends < starts:
        raise ValidationError(f"The package ends ({ends}) before it starts ({starts}).")
    times = check_visit_times(data.get("visit_times", ""))
    async with atomic() as tx:
        package = await CarePackage.create(
            using_db=tx.conn, starts_on=starts, ends_on=ends, visit_times=times, created_by_id=admin.id,
            client_name=crypto.seal(name, "care_packages.client_name"),
            address=crypto.seal(address, "care_packages.address"),
            care_notes=crypto.seal(notes, "care_packages.care_notes"))
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


async def get_package(viewer: User, package_id: int, client_address: str | None) -> PackageView:
    """A package with its client's details (a PHI read, audited)."""
    package = await _package_for(viewer, package_id)
    async with atomic() as tx:
        await tx.audit(Actor(viewer.id, client_address), "phi.read", "care_package", package.id,
                       fields=list(PACKAGE_PHI))
    view = PackageView(package.id, *(crypto.unseal(getattr(package, f), f"care_packages.{f}") for f in PACKAGE_PHI),
                       package.starts_on, package.ends_on, visit_times(package))
    view.carers = [pc.carer for pc in await PackageCarer.filter(package_id=package.id)
                   .prefetch_related("carer").order_by("id")]
    tasks = CareTask.filter(package_id=package.id, is_active=True).prefetch_related("carer").order_by("id")
    if viewer.role == Role.CARER:
        tasks = tasks.filter(carer_id=viewer.id)
    view.tasks = list(await tasks)
    return view


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


async def do_assign_carer(admin: User, package_id: int, carer_id: Any, client_address: str | None) -> None:
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
    async with atomic() as tx:
        deleted = await PackageCarer.filter(package_id=package.id, carer_id=carer_id).using_db(tx.conn).delete()
        if not deleted:
            raise NotFound(f"Carer {carer_id} is not assigned to this package.")
        await tx.audit(Actor(admin.id, client_address), "care.carer_unassigned", "care_package", package.id,
                       carer_id=carer_id)
        await tx.emit("care.package_unassigned", actor_id=admin.id, subject=("care_package", package.id),
                      data={"package_id": package.id}, users=[carer_id])


# --- tasks -----------------------------------------------------------------------------------


def task_payload(task: CareTask) -> dict[str, Any]:
    return {"task_id": task.id, "package_id": task.package_id, "title": task.title, "target": task.target,
            "period": str(task.period), "window": f"{clock(task.window_start)}–{clock(task.window_end)}"}


async def do_create_task(admin: User, package_id: int, data: dict[str, Any], client_address: str | None) -> CareTask:
    package = await _package_for(admin, package_id)
    fields_ = check_task_fields(data)
    carer = await check_carer(data.get("carer_id"))
    if fields_["period"] == Period.VISIT and not visit_times(package):
        raise ValidationError("This package has no visit schedule, so a task cannot be counted per visit.")
    async with atomic() as tx:
        if not await PackageCarer.filter(package_id=package.id, carer_id=carer.id).using_db(tx.conn).exists():
            await PackageCarer.create(using_db=tx.conn, package_id=package.id, carer_id=carer.id)
        task = await CareTask.create(using_db=tx.conn, package_id=package.id, carer_id=carer.id, **fields_)
        await tx.audit(Actor(admin.id, client_address), "care.task_created", "care_task", task.id,
                       carer_id=carer.id, title=task.title)
        await tx.emit("task.assigned", actor_id=admin.id, subject=("care_task", task.id),
                      data=task_payload(task), users=[carer.id])
    return task


async def _task_for(viewer: User, task_id: int, *, active: bool = False) -> CareTask:
    task = await CareTask.get_or_none(id=task_id)
    if task is None or (viewer.role != Role.ADMIN and task.carer_id != viewer.id) or (active and not task.is_active):
        raise NotFound(f"No task with id {task_id}.")
    return task


async def get_task(viewer: User, task_id: int) -> CareTask:
    return await _task_for(viewer, task_id)


async def do_update_task(admin: User, task_id: int, data: dict[str, Any], client_address: str | None) -> CareTask:
    """Change a task's details, reassign it to another carer, or end it (is_active false).
    The carers it concerns see the change live."""
    task = await _task_for(admin, task_id)
    changes = check_task_fields(data, partial=True)
    new_carer = await check_carer(data["carer_id"]) if data.get("carer_id") not in (None, "") else None
    if "is_active" in data:
        changes["is_active"] = bool(data["is_active"])
    old_carer_id = task.carer_id
    if new_carer is not None and new_carer.id != task.carer_id:
        changes["carer_id"] = new_carer.id
    if changes.get("period") == Period.VISIT and not visit_times(await CarePackage.get(id=task.package_id)):
        raise ValidationError("This package has no visit schedule, so a task cannot be counted per visit.")
    if not changes:
        return task
    async with atomic() as tx:
        if "carer_id" in changes and not await PackageCarer.filter(
                package_id=task.package_id, carer_id=changes["carer_id"]).using_db(tx.conn).exists():
            await PackageCarer.create(using_db=tx.conn, package_id=task.package_id, carer_id=changes["carer_id"])
        await CareTask.filter(id=task.id).using_db(tx.conn).update(**changes)
        await task.refresh_from_db(using_db=tx.conn)
        await tx.audit(Actor(admin.id, client_address), "care.task_changed", "care_task", task.id,
                       fields=sorted(changes), previous_carer_id=old_carer_id)
        payload = task_payload(task)
        subject = ("care_task", task.id)
        if not task.is_active:
            await tx.emit("task.removed", actor_id=admin.id, subject=subject, data=payload, users=[old_carer_id])
        elif task.carer_id != old_carer_id:
            await tx.emit("task.removed", actor_id=admin.id, subject=subject, data=payload, users=[old_carer_id])
            await tx.emit("task.assigned", actor_id=admin.id, subject=subject, data=payload, users=[task.carer_id])
        else:
            await tx.emit("task.updated", actor_id=admin.id, subject=subject, data=payload, users=[task.carer_id])
    return task


# --- counting toward targets ------------------------------------------------------------------


def period_bounds(task: CareTask, day: date) -> tuple[date, date]:
    """The counting period (inclusive dates) that `day` falls in for this task."""
    if task.period == Period.WEEK:
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=6)
    return day, day


def expected_in(task: CareTask, package: CarePackage, start: date, end: date) -> int:
    """How many completions the target asks for over [start, end], within the package's dates."""
    first = max(start, package.starts_on)
    last = min(end, package.ends_on) if package.ends_on else end
    if last < first:
        return 0
    days = (last - first).days + 1
    if task.period == Period.DAY:
        return task.target * days
    if task.period == Period.VISIT:
        return task.target * len(visit_times(package)) * days
    return task.target * math.ceil(days / 7)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


async def done_counts(task_ids: list[int], start: date, end: date) -> dict[int, int]:
    """Completions marked done (corrections count, what they replaced does not)."""
    if not task_ids:
        return {}
    rows = await TaskCompletion.filter(
        task_id__in=task_ids, status=CompletionStatus.DONE, superseded_at__isnull=True,
        occurred_at__gte=day_start(start), occurred_at__lt=day_start(end + timedelta(days=1)),
    ).values_list("task_id", flat=False)
    counts: dict[int, int] = {}
    for (task_id,) in rows:
        counts[task_id] = counts.get(task_id, 0) + 1
    return counts


async def latest_statuses(task_ids: list[int]) -> dict[int, str]:
    """Each task's most recent uncorrected completion status, in one query (a window
    function, which SQLite and PostgreSQL both have; Tortoise has no correlated subquery)."""
    if not task_ids:
        return {}
    ids = ",".join(str(int(task_id)) for task_id in task_ids)
    table = TaskCompletion._meta.db_table
    rows = await connections.get("default").execute_query_dict(
        f"SELECT task_id, status FROM (SELECT task_id, status, ROW_NUMBER() OVER ("  # nosec B608 - ints only
        f"PARTITION BY task_id ORDER BY occurred_at DESC, id DESC) AS n FROM {table} "
        f"WHERE superseded_at IS NULL AND task_id IN ({ids})) AS ranked WHERE n = 1")
    return {row["task_id"]: str(row["status"]) for row in rows}


@dataclass
class TaskProgress:
    task: CareTask
    package_id: int
    client_name: str
    done: int
    expected: int
    period_label: str
    window: str
    window_state: str  # upcoming | open | closed
    last_status: str | None = None

    @property
    def complete(self) -> bool:
        return self.done >= self.expected > 0


def _window_state(task: CareTask, at: datetime) -> str:
    minutes = at.hour * 60 + at.minute
    if minutes < task.window_start:
        return "upcoming"
    return "open" if minutes < task.window_end else "closed"


@dataclass
class CarerDay:
    day: date
    visits: list[tuple[str, str, int]]  # (time, client name, package id)
    tasks: list[TaskProgress]


async def carer_today(carer: User, client_address: str | None, at: datetime | None = None) -> CarerDay:
    """Today's visits and tasks across the carer's packages, with progress toward each target."""
    at = at or now()
    today = at.date()
    packages = {p.id: p for p in await CarePackage.filter(carers__carer_id=carer.id).distinct()
                if p.starts_on <= today and (p.ends_on is None or p.ends_on >= today)}
    names = await client_names(carer, list(packages), client_address)
    tasks = list(await CareTask.filter(carer_id=carer.id, is_active=True, package_id__in=list(packages))
                 .order_by("window_start", "id"))
    # One count query per distinct period (today, this week) and one for the latest
    # completions: the dashboard refreshes live, so no queries per task.
    bounds = {task.id: period_bounds(task, today) for task in tasks}
    done: dict[int, int] = {}
    for start, end in set(bounds.values()):
        done |= await done_counts([tid for tid, b in bounds.items() if b == (start, end)], start, end)
    last_status = await latest_statuses(list(bounds))
    progress = []
    for task in tasks:
        start, end = bounds[task.id]
        package = packages[task.package_id]
        expected = expected_in(task, package, start, end)
        label = {"day": "today", "visit": "today", "week": "this week"}[str(task.period)]
        progress.append(TaskProgress(task, package.id, names.get(package.id, ""), done.get(task.id, 0), expected,
                                     label, f"{clock(task.window_start)}–{clock(task.window_end)}",
                                     _window_state(task, at), last_status.get(task.id)))
    visits = sorted((t, names.get(pid, ""), pid) for pid, p in packages.items() for t in visit_times(p))
    return CarerDay(today, visits, progress)


# --- completions -----------------------------------------------------------------------------


def check_completion(status: Any, reason: Any, note: Any, occurred_at: Any, at: datetime) -> dict[str, Any]:
    try:
        status = CompletionStatus(str(status or "done"))
    except ValueError:
        raise ValidationError(f"The status '{str(status)[:20]}' is not one of: done, not_done.") from None
    reason = check_text(reason, "reason", max_length=200, required=False)
    if status == CompletionStatus.NOT_DONE and not reason:
        raise ValidationError("Say why the task was not done.")
    note = check_text(note, "note", max_length=2000, required=False)
    if occurred_at in (None, ""):
        when = at
    else:
        if isinstance(occurred_at, datetime):
            when = occurred_at
        else:
            try:
                when = datetime.fromisoformat(str(occurred_at))
            except ValueError:
                raise ValidationError(f"The time '{str(occurred_at)[:30]}' is not an ISO 8601 date-time.") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        if when > at + FUTURE_GRACE:
            raise ValidationError("A task cannot be logged as done in the future.")
        if when < at - timedelta(days=7):
            raise ValidationError("A completion more than 7 days ago cannot be logged; ask an admin.")
    return {"status": status, "reason": reason if status == CompletionStatus.NOT_DONE else None,
            "note": note, "occurred_at": when}


def check_key(key: Any) -> str:
    key = str(key or "")
    if not KEY_RE.match(key):
        raise ValidationError("The idempotency key must be 8 to 64 letters, digits, '-' or '_'.")
    return key


async def _existing(key: str, carer: User, task_id: int | None = None) -> TaskCompletion | None:
    existing = await TaskCompletion.get_or_none(idempotency_key=key)
    if existing is None:
        return None
    if existing.carer_id != carer.id or (task_id is not None and existing.task_id != task_id):
        raise Conflict("This idempotency key was already used for another request.")
    return existing


async def do_log_completion(carer: User, task_id: int, *, key: Any, status: Any = "done", reason: Any = None,
                            note: Any = None, occurred_at: Any = None, client_address: str | None = None,
                            at: datetime | None = None) -> tuple[TaskCompletion, bool]:
    """Record a completion once per idempotency key. Returns (completion, created)."""
    task = await _task_for(carer, task_id, active=True)
    key = check_key(key)
    at = at or now()
    values = check_completion(status, reason, note, occurred_at, at)
    if (existing := await _existing(key, carer, task.id)) is not None:
        return existing, False
    try:
        async with atomic() as tx:
            completion = await TaskCompletion.create(
                using_db=tx.conn, task_id=task.id, carer_id=carer.id, idempotency_key=key,
                status=values["status"], reason=values["reason"], occurred_at=values["occurred_at"],
                note=crypto.seal(values["note"], "task_completions.note"))
            actor = Actor(carer.id, client_address)
            await tx.audit(actor, "care.task_logged", "task_completion", completion.id, task_id=task.id,
                           status=str(values["status"]))
            if values["note"]:
                await tx.audit(actor, "phi.write", "task_completion", completion.id, fields=["note"])
            await _emit_completion(tx, carer, task, completion)
    except IntegrityError:
        # The same key raced in from a parallel retry: the other request recorded it.
        existing = await _existing(key, carer, task.id)
        if existing is None:
            raise
        return existing, False
    return completion, True


async def _emit_completion(tx, carer: User, task: CareTask, completion: TaskCompletion,
                           corrected: bool = False) -> None:
    data = {**task_payload(task), "completion_id": completion.id, "status": str(completion.status),
            "reason": completion.reason, "carer_name": carer.full_name, "corrected": corrected,
            "occurred_at": completion.occurred_at}
    await tx.emit("task.completed", actor_id=carer.id, subject=("care_task", task.id), data=data,
                  roles=[Role.ADMIN], users=[carer.id])


async def do_correct_completion(carer: User, completion_id: int, *, key: Any, status: Any, reason: Any = None,
                                note: Any = None, occurred_at: Any = None, client_address: str | None = None,
                                at: datetime | None = None) -> tuple[TaskCompletion, bool]:
    """Replace a completion with a corrected one; the original stays, marked superseded, and
    the audit trail records what it said."""
    at = at or now()
    original = await TaskCompletion.get_or_none(id=completion_id)
    if original is None or original.carer_id != carer.id:
        raise NotFound(f"No completion with id {completion_id}.")
    key = check_key(key)
    if (existing := await _existing(key, carer, original.task_id)) is not None:
        return existing, False
    if original.superseded_at is not None:
        raise Conflict(f"Completion {completion_id} was already corrected; correct the newest version.")
    task = await _task_for(carer, original.task_id)
    values = check_completion(status, reason, note, occurred_at or original.occurred_at, at)
    try:
        async with atomic() as tx:
            updated = await TaskCompletion.filter(id=original.id, superseded_at__isnull=True).using_db(
                tx.conn).update(superseded_at=at)
            if not updated:
                raise Conflict(f"Completion {completion_id} was already corrected; correct the newest version.")
            completion = await TaskCompletion.create(
                using_db=tx.conn, task_id=task.id, carer_id=carer.id, idempotency_key=key, corrects_id=original.id,
                status=values["status"], reason=values["reason"], occurred_at=values["occurred_at"],
                note=crypto.seal(values["note"], "task_completions.note"))
            actor = Actor(carer.id, client_address)
            await tx.audit(actor, "care.task_corrected", "task_completion", completion.id, corrects=original.id,
                           original_status=str(original.status), original_reason=original.reason,
                           original_occurred_at=original.occurred_at.isoformat())
            if values["note"]:
                await tx.audit(actor, "phi.write", "task_completion", completion.id, fields=["note"])
            await _emit_completion(tx, carer, task, completion, corrected=True)
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


# --- missed tasks ----------------------------------------------------------------------------


async def check_missed(at: datetime | None = None) -> int:
    """Record (once) and announce every task whose window closed short of its target:
    today's closed windows and yesterday's, and last week's weekly targets."""
    at = at or now()
    today = at.date()
    minutes = at.hour * 60 + at.minute
    found = 0
    tasks = await CareTask.filter(is_active=True).prefetch_related("package", "carer")
    for task in tasks:
        package: CarePackage = task.package
        if task.period == Period.WEEK:
            monday = today - timedelta(days=today.weekday())
            candidates = [(monday - timedelta(days=7), monday - timedelta(days=1))]
        else:
            candidates = [(today - timedelta(days=1),) * 2]
            if minutes >= task.window_end:
                candidates.append((today, today))
        for start, end in candidates:
            if start < task.created_at.date() and end < task.created_at.date():
                continue
            expected = expected_in(task, package, start, end)
            if expected == 0 or await MissedTask.exists(task_id=task.id, on_date=end):
                continue
            done = (await done_counts([task.id], start, end)).get(task.id, 0)
            if done >= expected:
                continue
            try:
                async with atomic() as tx:
                    await MissedTask.create(using_db=tx.conn, task_id=task.id, on_date=end, done=done, target=expected)
                    await tx.emit("task.missed", actor_id=None, subject=("care_task", task.id),
                                  data={**task_payload(task), "on_date": end.isoformat(), "done": done,
                                        "expected": expected, "carer_name": task.carer.full_name},
                                  roles=[Role.ADMIN], users=[task.carer_id])
            except IntegrityError:  # another process recorded it first
                continue
            found += 1
    return found


# --- progress over a period --------------------------------------------------------------------


@dataclass
class ProgressRow:
    task: CareTask
    label: str
    done: int
    expected: int

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.expected) if self.expected else 0


async def progress(viewer: User, *, start: date, end: date, carer_id: int | None = None,
                   package_id: int | None = None, client_address: str | None = None) -> list[ProgressRow]:
    """Completions against targets over [start, end] for one carer's tasks or one package's."""
    check_period(start, end)
    query = CareTask.all().prefetch_related("package", "carer").order_by("package_id", "id")
    if viewer.role != Role.ADMIN:
        if carer_id not in (None, viewer.id):
            raise NotFound(f"No carer with id {carer_id}.")
        carer_id = viewer.id
    if package_id is not None:
        await _package_for(viewer, package_id)
        query = query.filter(package_id=package_id)
    if carer_id is not None:
        query = query.filter(carer_id=carer_id)
    tasks = list(await query)
    counts = await done_counts([t.id for t in tasks], start, end)
    names = (await client_names(viewer, sorted({t.package_id for t in tasks}), client_address)
             if package_id is None else {})
    rows = []
    for task in tasks:
        expected = expected_in(task, task.package, start, end)
        done = counts.get(task.id, 0)
        if not task.is_active and done == 0:
            continue
        label = task.title if package_id is not None else f"{task.title} ({names.get(task.package_id, '')})"
        if package_id is not None:
            label = f"{task.title} ({task.carer.full_name})"
        rows.append(ProgressRow(task, label, done, expected))
    return rows


async def daily_done(task_ids: list[int], start: date, end: date) -> list[tuple[date, int]]:
    rows = await TaskCompletion.filter(
        task_id__in=task_ids, status=CompletionStatus.DONE, superseded_at__isnull=True,
        occurred_at__gte=day_start(start), occurred_at__lt=day_start(end + timedelta(days=1)),
    ).values_list("occurred_at", flat=True) if task_ids else []
    per_day: dict[date, int] = {}
    for occurred in rows:
        per_day[occurred.date()] = per_day.get(occurred.date(), 0) + 1
    days = (end - start).days + 1
    return [(start + timedelta(days=i), per_day.get(start + timedelta(days=i), 0)) for i in range(days)]


async def carers() -> list[User]:
    return list(await User.filter(role=Role.CARER, is_active=True).order_by("full_name"))
