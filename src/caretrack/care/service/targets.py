"""What a task's target expects, day by day, from its history (CareTaskTarget rows).

The rules, on the package's own days (caretrack.care.zones):
- a change applies to the whole day it was made on: the day's target is the last one set that day,
  so ending a task today means nothing is expected of it today;
- a day before the task's first row (its creation), after it ended, or outside the package's dates
  expects nothing;
- a daily target counts on each such day, a per-visit target once per scheduled visit of the day;
- a weekly target counts once per ISO week (Monday to Sunday) in which the task is active on at
  least one day of the period, at the target in force on the last such day. So a period that starts
  or ends mid-week still expects the week's whole target, and so does the week a task started in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient

from caretrack.care import zones
from caretrack.care.models import CarePackage, CareTask, CareTaskTarget, Period
from caretrack.care.schedule import visit_times
from caretrack.care.service.rota import planned_visits


@dataclass(frozen=True)
class Setting:
    """A task's target and period from `effective_on` on (active false: ended)."""

    effective_on: date
    target: int
    period: Period
    active: bool


def state_of(task: CareTask) -> tuple[int, Period, bool]:
    return task.target, Period(task.period), task.is_active


async def record(conn: BaseDBAsyncClient, task: CareTask, package: CarePackage, at: datetime) -> None:
    """Write the task's target as it now is, from the package's date at `at` on (in the caller's
    transaction)."""
    target, period, active = state_of(task)
    await CareTaskTarget.create(using_db=conn, task_id=task.id, effective_on=zones.today(package, at),
                                target=target, period=period, active=active, recorded_at=at)


async def histories(task_ids: Iterable[int]) -> dict[int, list[Setting]]:
    """Each task's settings in the order they were made (one query for all the tasks)."""
    ids = sorted(set(task_ids))
    found: dict[int, list[Setting]] = {task_id: [] for task_id in ids}
    if not ids:
        return found
    for row in await CareTaskTarget.filter(task_id__in=ids).order_by("task_id", "effective_on", "id"):
        found[row.task_id].append(Setting(row.effective_on, row.target, Period(row.period), row.active))
    return found


def implied(task: CareTask, package: CarePackage) -> list[Setting]:
    """The history a task without rows stands for: its current target from the day it was created
    (exact for any period in which it has not been changed)."""
    target, period, active = state_of(task)
    return [Setting(zones.today(package, task.created_at), target, period, active)]


async def visit_plans(tasks: Iterable[CareTask], first: date, last: date) -> dict[int, dict[date, int]]:
    """The visits each package's rota plans per day over [first, last], for the packages with a
    task counted per visit (none read otherwise): {package id: {date: visits}}."""
    package_ids = sorted({t.package_id for t in tasks if t.period == Period.VISIT})
    plans: dict[int, dict[date, int]] = {pid: {} for pid in package_ids}
    for (package_id, day), count in (await planned_visits(package_ids, first, last)).items():
        plans[package_id][day] = count
    return plans


def expected_in(task: CareTask, package: CarePackage, start: date, end: date,
                history: Sequence[Setting] | None = None, visits: Mapping[date, int] | None = None) -> int:
    """How many completions the task's targets ask for over the package's days [start, end].
    A per-visit target counts once per visit the rota plans that day (`visits`, from
    `visit_plans`); without it, once per daily visit time."""
    settings = list(history) if history else implied(task, package)
    first = max(start, package.starts_on, settings[0].effective_on)
    last = min(end, package.ends_on) if package.ends_on else end
    daily_visits = len(visit_times(package))
    total = 0
    weeks: dict[tuple[int, int], int] = {}
    index, current = 0, None
    day = first
    while day <= last:
        while index < len(settings) and settings[index].effective_on <= day:
            current, index = settings[index], index + 1
        if current is not None and current.active:
            if current.period == Period.DAY:
                total += current.target
            elif current.period == Period.VISIT:
                total += current.target * (visits.get(day, 0) if visits is not None else daily_visits)
            else:
                year, week, _ = day.isocalendar()
                weeks[(year, week)] = current.target  # the last active day of the week sets it
        day += timedelta(days=1)
    return total + sum(weeks.values())
