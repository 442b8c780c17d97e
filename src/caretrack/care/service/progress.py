"""Counting toward targets: the carer's day, and completions against targets over a period
(`figures`), which the pages, the API, the charts and the PDF all show. What a target expects
day by day is caretrack.care.service.targets; counting on the database, .counts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from tortoise import connections

from caretrack.accounts.models import User
from caretrack.care import zones
from caretrack.care.models import CarePackage, CareTask, Period, TaskCompletion
from caretrack.care.schedule import clock
from caretrack.care.service.counts import tally, zones_of
from caretrack.care.service.packages import _package_for, client_names
from caretrack.care.service.targets import expected_in as expected_in  # re-exported: the missed-task job
from caretrack.care.service.targets import histories, visit_plans
from caretrack.care.service.tasks import blocked_tasks
from caretrack.core.clock import in_zone, utcnow
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


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


async def done_counts(task_ids: list[int], start: date, end: date,
                      task_zones: Mapping[int, str] | None = None) -> dict[int, int]:
    """Completions marked done over the packages' local days [start, end] (corrections count, what
    they replaced does not). `task_zones` (task id to its package's zone) saves looking them up."""
    if not task_ids:
        return {}
    found = await tally(task_zones if task_zones is not None else await zones_of(task_ids), start, end)
    return found.done()


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
    blocked: str | None = None  # why the carer should not do it yet (caretrack.care.service.tasks)

    @property
    def complete(self) -> bool:
        return self.done >= self.expected > 0


def _window_state(task: CareTask, package: CarePackage, at: datetime) -> str:
    """Where `at` falls against the task's window, on the package's clock."""
    minutes = zones.minute_of_day(package, at)
    if minutes < task.window_start:
        return "upcoming"
    return "open" if minutes < task.window_end else "closed"


@dataclass
class CarerDay:
    day: date
    tasks: list[TaskProgress]  # the day's visits are caretrack.care.service.visits.carer_visits
    time_zones: dict[int, str]  # package id -> the zone its times are on


async def carer_today(carer: User, client_address: str | None, at: datetime | None = None) -> CarerDay:
    """Today's tasks across the carer's packages, with progress toward each target. "Today" is
    each package's own: its date and task windows on its clock."""
    at = at or utcnow()
    packages = {}
    for package in await CarePackage.filter(carers__carer_id=carer.id, archived_at__isnull=True).distinct():
        local_today = zones.today(package, at)
        if package.starts_on <= local_today and (package.ends_on is None or package.ends_on >= local_today):
            packages[package.id] = package
    names = await client_names(carer, list(packages), client_address)
    tasks = list(await CareTask.filter(carer_id=carer.id, is_active=True, needs_carer=False,
                                       package_id__in=list(packages))
                 .order_by("window_start", "id"))
    # One count query per distinct period (today, this week; more only for packages on zones
    # whose dates differ) and one for the latest completions: the dashboard refreshes live, so
    # no queries per task.
    bounds = {task.id: period_bounds(task, zones.today(packages[task.package_id], at)) for task in tasks}
    done: dict[int, int] = {}
    for start, end in set(bounds.values()):
        done |= await done_counts([tid for tid, b in bounds.items() if b == (start, end)], start, end)
    last_status = await latest_statuses(list(bounds))
    blocked = await blocked_tasks([(t.id, t.carer_id, t.required_skill_id) for t in tasks], at)
    days = [day for bound in bounds.values() for day in bound]
    plans = await visit_plans(tasks, min(days), max(days)) if days else {}
    progress = []
    for task in tasks:
        start, end = bounds[task.id]
        package = packages[task.package_id]
        expected = expected_in(task, package, start, end, visits=plans.get(task.package_id))
        label = {"day": "today", "visit": "today", "week": "this week"}[str(task.period)]
        progress.append(TaskProgress(task, package.id, names.get(package.id, ""), done.get(task.id, 0), expected,
                                     label, f"{clock(task.window_start)}–{clock(task.window_end)}",
                                     _window_state(task, package, at), last_status.get(task.id), blocked.get(task.id)))
    time_zones = {pid: p.time_zone for pid, p in packages.items()}
    # The heading's day: the packages' when they share a clock (as an agency's do), else the carer's own.
    heading_zone = next(iter(set(time_zones.values()))) if len(set(time_zones.values())) == 1 else carer.time_zone
    return CarerDay(in_zone(at, heading_zone).date(), progress, time_zones)


def percent(done: int, expected: int) -> int:
    return round(100 * done / expected) if expected else 0


@dataclass
class ProgressRow:
    task: CareTask
    label: str
    done: int
    expected: int
    not_done: int = 0

    @property
    def percent(self) -> int:
        return percent(self.done, self.expected)

    @property
    def figures(self) -> str:
        """"2 of 4 (50%)": how every surface words a row."""
        if not self.expected:
            return f"{self.done} done, none expected"
        return f"{self.done} of {self.expected} ({self.percent}%)"


@dataclass
class Figures:
    """Completions against targets over [start, end]: the rows, their totals and the done per day.
    The pages, the API and the PDF all show these."""

    start: date
    end: date
    rows: list[ProgressRow]
    daily: list[tuple[date, int]]

    @property
    def done(self) -> int:
        return sum(r.done for r in self.rows)

    @property
    def expected(self) -> int:
        return sum(r.expected for r in self.rows)

    @property
    def percent(self) -> int:
        return percent(self.done, self.expected)

    @property
    def total(self) -> str:
        return f"{self.done} of {self.expected} expected completions ({self.percent}%)"


async def figures(viewer: User, *, start: date, end: date, carer_id: int | None = None,
                  package_id: int | None = None, client_address: str | None = None) -> Figures:
    """Completions against targets over [start, end] (each package's own days) for one carer's
    tasks or one package's: one query for the tasks, one for their histories, one count."""
    check_period(start, end)
    query = CareTask.all().prefetch_related("package", "carer").order_by("package_id", "id")
    if viewer.role != Role.ADMIN:
        if carer_id not in (None, viewer.id):
            raise NotFound(f"No carer with id {carer_id}.")
        carer_id = viewer.id
        query = query.filter(package__archived_at__isnull=True)  # an archived package is the office's alone
    if package_id is not None:
        await _package_for(viewer, package_id)
        query = query.filter(package_id=package_id)
    if carer_id is not None:
        query = query.filter(carer_id=carer_id)
    tasks = list(await query)
    history = await histories(t.id for t in tasks)
    counted = await tally({t.id: t.package.time_zone for t in tasks}, start, end)
    done = counted.done()
    names = (await client_names(viewer, sorted({t.package_id for t in tasks}), client_address)
             if package_id is None else {})
    plans = await visit_plans(tasks, start, end)
    rows = []
    for task in tasks:
        expected = expected_in(task, task.package, start, end, history[task.id], plans.get(task.package_id))
        if expected == 0 and task.id not in done:
            continue  # not in force in the period, and nothing logged
        label = (f"{task.title} ({task.carer.full_name})" if package_id is not None
                 else f"{task.title} ({names.get(task.package_id, '')})")
        rows.append(ProgressRow(task, label, done.get(task.id, 0), expected, counted.not_done.get(task.id, 0)))
    return Figures(start, end, rows, counted.daily({r.task.id for r in rows}, start, end))


async def package_today(viewer: User, package_id: int, at: datetime) -> date:
    """The package's date at `at`, where its default periods end (no PHI is read)."""
    return zones.today(await _package_for(viewer, package_id), at)


async def progress(viewer: User, *, start: date, end: date, carer_id: int | None = None,
                   package_id: int | None = None, client_address: str | None = None) -> list[ProgressRow]:
    """The rows of `figures`."""
    return (await figures(viewer, start=start, end=end, carer_id=carer_id, package_id=package_id,
                          client_address=client_address)).rows


async def daily_done(task_ids: list[int], start: date, end: date,
                     task_zones: Mapping[int, str] | None = None) -> list[tuple[date, int]]:
    """Completions marked done on each local day of [start, end], across the tasks."""
    zones_by_task = (task_zones if task_zones is not None else await zones_of(task_ids)) if task_ids else {}
    return (await tally(zones_by_task, start, end)).daily(set(task_ids), start, end)
