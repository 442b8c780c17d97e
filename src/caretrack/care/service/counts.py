"""Completions counted on the database by task, package-local day and status: one GROUP BY query
however long the period, so a year of completions never comes into Python row by row. A "done"
logged before its window opened (kept, marked early) does not count.

The local day of a completion is worked out in SQL from its UTC instant and the package's UTC
offset at that instant (caretrack.care.zones.offsets, which follows DST changes): a CASE picks the
offset by instant, and (epoch seconds + offset) // 86400 is the local date's day number. SQLite
has no time-zone data, so the offsets come from Python's zoneinfo for both databases alike."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from tortoise import connections
from tortoise.expressions import RawSQL
from tortoise.functions import Count

from caretrack.care import zones
from caretrack.care.models import CareTask, CompletionStatus, TaskCompletion

DAY_SECONDS = 86400
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
EPOCH_SQL = {  # the completion's instant as whole seconds since 1970 (UTC)
    "sqlite": "CAST(strftime('%s', occurred_at) AS INTEGER)",
    "postgres": "CAST(FLOOR(EXTRACT(EPOCH FROM occurred_at)) AS BIGINT)",
}


@dataclass
class Tally:
    """Uncorrected completions over a period: done per (task, local day), not done per task."""

    done_by_day: dict[tuple[int, date], int] = field(default_factory=dict)
    not_done: dict[int, int] = field(default_factory=dict)

    def done(self) -> dict[int, int]:
        totals: dict[int, int] = {}
        for (task_id, _), n in self.done_by_day.items():
            totals[task_id] = totals.get(task_id, 0) + n
        return totals

    def daily(self, task_ids: set[int], first: date, last: date) -> list[tuple[date, int]]:
        """Done per day across `task_ids`, every day of [first, last] listed."""
        per_day: dict[date, int] = {}
        for (task_id, day), n in self.done_by_day.items():
            if task_id in task_ids:
                per_day[day] = per_day.get(day, 0) + n
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        return [(day, per_day.get(day, 0)) for day in days]


@dataclass
class _Zone:  # a package's zone alone (caretrack.care.zones.Zoned)
    time_zone: str


def _day_number(epoch: str, runs: list[tuple[datetime, int]]) -> str:
    """SQL for the local day number of `epoch`, given the offsets in force from each instant."""
    if len(runs) == 1:
        return f"(({epoch} + {runs[0][1]}) / {DAY_SECONDS})"
    whens = " ".join(f"WHEN {epoch} < {int(until.timestamp())} THEN ({epoch} + {offset}) / {DAY_SECONDS}"
                     for (_, offset), (until, _) in zip(runs, runs[1:], strict=False))
    return f"CASE {whens} ELSE ({epoch} + {runs[-1][1]}) / {DAY_SECONDS} END"


async def zones_of(task_ids: list[int]) -> dict[int, str]:
    rows = await CareTask.filter(id__in=task_ids).values_list("id", "package__time_zone")
    return {int(task_id): str(name or "UTC") for task_id, name in rows}


async def tally(task_zones: Mapping[int, str], first: date, last: date) -> Tally:
    """Count the tasks' completions over the package-local days [first, last]; `task_zones` maps
    each task to its package's time zone."""
    result = Tally()
    if not task_zones:
        return result
    dialect = connections.get("default").capabilities.dialect
    epoch = EPOCH_SQL["postgres" if dialect == "postgres" else "sqlite"]
    by_zone: dict[str, list[int]] = {}
    for task_id, name in task_zones.items():
        by_zone.setdefault(name, []).append(int(task_id))
    spans = {name: zones.day_span(_Zone(name), first, last) for name in by_zone}
    branches = []
    for name, (low, high) in spans.items():
        runs = [(at, int(offset.total_seconds())) for at, offset in zones.offsets(_Zone(name), low, high)]
        branches.append((by_zone[name], _day_number(epoch, runs)))
    if len(branches) == 1:
        day_sql = branches[0][1]
    else:  # ints only: task ids and offsets
        day_sql = "CASE " + " ".join(f"WHEN task_id IN ({','.join(map(str, ids))}) THEN {sql}"
                                     for ids, sql in branches) + " END"
    rows = await (TaskCompletion
                  .filter(task_id__in=list(task_zones), superseded_at__isnull=True, early=False,
                          occurred_at__gte=min(low for low, _ in spans.values()),
                          occurred_at__lt=max(high for _, high in spans.values()))
                  .annotate(day=RawSQL(day_sql), n=Count("id"))
                  .group_by("task_id", "day", "status")
                  .values("task_id", "day", "status", "n"))
    for row in rows:
        day = date.fromordinal(int(row["day"]) + EPOCH_ORDINAL)
        if not first <= day <= last:  # a wider span of another zone's tasks
            continue
        task_id, n = int(row["task_id"]), int(row["n"])
        if row["status"] == CompletionStatus.DONE:
            result.done_by_day[(task_id, day)] = result.done_by_day.get((task_id, day), 0) + n
        else:
            result.not_done[task_id] = result.not_done.get(task_id, 0) + n
    return result
