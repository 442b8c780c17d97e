"""Counting toward targets: what a task's target expects over a period, what was done, the
carer's day, and completions against targets over a period for the charts and reports."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from tortoise import connections

from caretrack.accounts.models import User
from caretrack.care.models import CarePackage, CareTask, CompletionStatus, Period, TaskCompletion
from caretrack.care.schedule import clock, visit_times
from caretrack.care.service.packages import _package_for, client_names
from caretrack.core.clock import utcnow
from caretrack.core.errors import NotFound, ValidationError
from caretrack.core.roles import Role
from caretrack.core.validation import check_date

MAX_PERIOD_DAYS = 366


def check_period(start: date, end: date) -> None:
    if end < start:
        raise ValidationError(f"The period ends ({end}) before it starts ({start}).")
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise ValidationError(f"A period is at most {MAX_PERIOD_DAYS} days.")


def period_of(start: object, end: object, today: date, default_days: int = 7) -> tuple[date, date]:
    """The period a page asks for (start and end as YYYY-MM-DD, either may be blank): by default
    the `default_days` up to today."""
    last = check_date(end or None, "end date", required=False) or today
    first = check_date(start or None, "start date", required=False) or last - timedelta(days=default_days - 1)
    check_period(first, last)
    return first, last


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
    tasks: list[TaskProgress]  # the day's visits are caretrack.care.service.visits.carer_visits


async def carer_today(carer: User, client_address: str | None, at: datetime | None = None) -> CarerDay:
    """Today's tasks across the carer's packages, with progress toward each target."""
    at = at or utcnow()
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
    return CarerDay(today, progress)


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
