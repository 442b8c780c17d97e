"""Missed tasks: a window that closed short of its target is recorded once and announced to
the admins and the carer, on the package's clock. The check runs every minute (caretrack.care.jobs),
so a window is reported within a minute of closing.

Why a scan rather than one deferred job per window close: a scan has no plan to keep in step
with the tasks (a window, target or carer changed, a task ended, a package's zone or dates
changed, a DST day) and catches up by itself after the runners were down (yesterday's windows are
always looked at). It costs a fixed handful of queries whatever the number of tasks: the active
tasks with their packages and carers, the misses already recorded, one count per distinct period,
the reasons logged for the short ones; a write only for a new miss.

A window short of its target where the carer logged why ("not done — Client declined") is not a
miss by the carer: it is recorded with that reason (MissedTask.reason) and announced as not done.
Without a reason it is missed: nothing was logged for the rest of the target."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from tortoise.exceptions import IntegrityError

from caretrack.care import zones
from caretrack.care.models import CarePackage, CareTask, CompletionStatus, MissedTask, Period, TaskCompletion
from caretrack.care.service.progress import done_counts, expected_in
from caretrack.care.service.reminders import initials
from caretrack.care.service.targets import visit_plans
from caretrack.care.service.tasks import task_payload
from caretrack.core import crypto
from caretrack.core.audit.service import SYSTEM
from caretrack.core.clock import utcnow
from caretrack.core.roles import Role
from caretrack.core.transaction import atomic


@dataclass
class _Closed:
    """A task's period whose window has closed on the package's clock."""

    task: CareTask
    start: date
    end: date
    expected: int
    done: int = 0


def closed_periods(task: CareTask, package: CarePackage, at: datetime) -> list[tuple[date, date]]:
    """The periods (inclusive package-local dates) of `task` whose window has closed by `at` and
    that a check still looks at: yesterday's and, once its window has closed, today's; for a
    weekly target, last week's."""
    today = zones.today(package, at)
    if task.period == Period.WEEK:
        monday = today - timedelta(days=today.weekday())
        return [(monday - timedelta(days=7), monday - timedelta(days=1))]
    periods = [(today - timedelta(days=1),) * 2]
    if zones.minute_of_day(package, at) >= task.window_end:
        periods.append((today, today))
    return periods


async def check_missed(at: datetime | None = None) -> int:
    """Record (once) and announce every task whose window closed short of its target."""
    at = at or utcnow()
    closed: list[_Closed] = []
    # A task waiting for a carer, or on an archived package, is nobody's to miss.
    tasks = list(await CareTask.filter(is_active=True, needs_carer=False, package__archived_at__isnull=True)
                 .prefetch_related("package", "carer"))
    periods = {task.id: closed_periods(task, task.package, at) for task in tasks}
    days = [day for spans in periods.values() for span in spans for day in span]
    plans = await visit_plans(tasks, min(days), max(days)) if days else {}
    for task in tasks:
        for start, end in periods[task.id]:
            if zones.instant(task.package, end, task.window_end) <= task.created_at:
                continue  # the window had closed before the task was set
            expected = expected_in(task, task.package, start, end, visits=plans.get(task.package_id))
            if expected:
                closed.append(_Closed(task, start, end, expected))
    if not closed:
        return 0
    recorded = set(await MissedTask.filter(
        task_id__in=sorted({c.task.id for c in closed}), on_date__in=sorted({c.end for c in closed}),
    ).values_list("task_id", "on_date"))
    closed = [c for c in closed if (c.task.id, c.end) not in recorded]
    by_period: dict[tuple[date, date], list[_Closed]] = defaultdict(list)
    for c in closed:
        by_period[(c.start, c.end)].append(c)
    for (start, end), group in by_period.items():
        counts = await done_counts([c.task.id for c in group], start, end)
        for c in group:
            c.done = counts.get(c.task.id, 0)
    short = [c for c in closed if c.done < c.expected]
    reasons = await _reasons(short)
    found = 0
    for c in short:
        if await _record(c, reasons.get((c.task.id, c.end))):
            found += 1
    return found


async def _reasons(short: list[_Closed]) -> dict[tuple[int, date], str]:
    """The latest reason logged (uncorrected "not done") in each short period, in one query."""
    if not short:
        return {}
    earliest = min(zones.day_span(c.task.package, c.start, c.end)[0] for c in short)
    latest = max(zones.day_span(c.task.package, c.start, c.end)[1] for c in short)
    rows = await TaskCompletion.filter(
        task_id__in=sorted({c.task.id for c in short}), status=CompletionStatus.NOT_DONE, superseded_at__isnull=True,
        occurred_at__gte=earliest, occurred_at__lt=latest,
    ).order_by("occurred_at", "id").values_list("task_id", "occurred_at", "reason")
    periods: dict[int, list[_Closed]] = defaultdict(list)
    for c in short:
        periods[c.task.id].append(c)
    reasons: dict[tuple[int, date], str] = {}
    for task_id, occurred_at, reason in rows:
        for c in periods[task_id]:
            first, last = zones.day_span(c.task.package, c.start, c.end)
            if first <= occurred_at < last:
                reasons[(task_id, c.end)] = reason or "no reason given"
    return reasons


async def _record(c: _Closed, reason: str | None) -> bool:
    task, package = c.task, c.task.package
    # The event names the client by initials only (as the visit reminders do): the full name is
    # PHI, sealed at rest, and event data is stored in the outbox in the clear.
    client = initials(crypto.unseal(package.client_name, "care_packages.client_name") or "")
    try:
        async with atomic() as tx:
            await MissedTask.create(using_db=tx.conn, task_id=task.id, on_date=c.end, done=c.done, target=c.expected,
                                    reason=reason)
            await tx.audit(SYSTEM, "phi.read", "care_package", package.id, fields=["client_name"],
                           purpose="missed-task notice", task_id=task.id)
            await tx.emit("task.missed", actor_id=None, subject=("care_task", task.id), data={
                **task_payload(task), "on_date": c.end.isoformat(), "done": c.done, "expected": c.expected,
                "carer_id": task.carer_id, "carer_name": task.carer.full_name, "client": client,
                "outcome": "not_done" if reason else "missed", "reason": reason,
                "closed_at": zones.instant(package, c.end, task.window_end).isoformat()},
                roles=[Role.ADMIN], users=[task.carer_id])
    except IntegrityError:  # another process recorded it first
        return False
    return True
