"""What a task's target history expects over a period (caretrack.care.service.targets), day by
day on the package's dates; no database needed."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace

from caretrack.care.models import Period
from caretrack.care.service.targets import Setting, expected_in

TASK = SimpleNamespace(target=9, period=Period.DAY, is_active=True, created_at=datetime(2026, 1, 1, tzinfo=UTC))


def package(starts_on: date = date(2026, 1, 1), ends_on: date | None = None, visit_times: str = ""):
    return SimpleNamespace(starts_on=starts_on, ends_on=ends_on, visit_times=visit_times, time_zone="Europe/London")


def expected(history: list[Setting], start: date, end: date, **kwargs) -> int:
    return expected_in(TASK, package(**kwargs), start, end, history)  # type: ignore[arg-type]


def on(day: int, target: int, period: Period = Period.DAY, active: bool = True, month: int = 11) -> Setting:
    return Setting(date(2026, month, day), target, period, active)


NOV_9, NOV_15 = date(2026, 11, 9), date(2026, 11, 15)  # Monday to Sunday


def test_the_last_target_set_on_a_day_counts_for_the_whole_day():
    assert expected([on(12, 3), on(12, 4)], NOV_9, NOV_15) == 4 * 4  # 12th to 15th at 4
    assert expected([on(2, 2), on(11, 5)], NOV_9, NOV_15) == 2 * 2 + 5 * 5


def test_nothing_before_the_task_after_it_ended_or_outside_the_package():
    assert expected([on(16, 3)], NOV_9, NOV_15) == 0
    assert expected([on(2, 2), on(12, 2, active=False)], NOV_9, NOV_15) == 3 * 2  # ended on the 12th
    assert expected([on(12, 2), on(12, 2, active=False)], NOV_9, NOV_15) == 0  # ended the day it began
    assert expected([on(2, 2), on(11, 2, active=False), on(13, 2)], NOV_9, NOV_15) == 2 * 2 + 3 * 2  # and again
    assert expected([on(2, 1)], NOV_9, NOV_15, ends_on=date(2026, 11, 12)) == 4
    assert expected([on(2, 1)], NOV_9, NOV_15, starts_on=date(2026, 11, 14)) == 2


def test_a_weekly_target_counts_once_for_each_iso_week_it_is_active_in():
    assert expected([on(2, 1, Period.WEEK)], NOV_9, NOV_15) == 1
    assert expected([on(2, 1, Period.WEEK)], date(2026, 11, 11), date(2026, 11, 17)) == 2  # two weeks touched
    assert expected([on(14, 1, Period.WEEK)], NOV_9, NOV_15) == 1  # the week it started in
    # raised mid-week: the week's target is the one in force on its last active day
    assert expected([on(2, 1, Period.WEEK), on(11, 3, Period.WEEK)], NOV_9, NOV_15) == 3
    assert expected([on(2, 1, Period.WEEK), on(11, 3, Period.WEEK, active=False)], NOV_9, NOV_15) == 1
    # daily on Monday and Tuesday, then weekly
    assert expected([on(2, 1), on(11, 2, Period.WEEK)], NOV_9, NOV_15) == 1 + 1 + 2


def test_a_visit_target_counts_each_scheduled_visit():
    assert expected([on(2, 1, Period.VISIT)], NOV_9, NOV_15, visit_times="08:00,13:00,18:00") == 7 * 3


def test_without_a_history_the_task_counts_from_its_creation_date_in_the_package_zone():
    late = SimpleNamespace(target=2, period=Period.DAY, is_active=True,
                           created_at=datetime(2026, 6, 30, 23, 30, tzinfo=UTC))  # 1 July in London
    assert expected_in(late, package(), date(2026, 6, 29), date(2026, 7, 2)) == 2 * 2  # type: ignore[arg-type]
