"""A package's clock across daylight-saving changes (Europe/London, 2026)."""

from dataclasses import dataclass
from datetime import UTC, date, datetime

from caretrack.care import zones


@dataclass
class Package:
    time_zone: str


LONDON = Package("Europe/London")


def test_a_summer_day_starts_at_23_00_utc_the_evening_before():
    assert zones.instant(LONDON, date(2026, 7, 1), 0) == datetime(2026, 6, 30, 23, 0, tzinfo=UTC)
    assert zones.today(LONDON, datetime(2026, 6, 30, 23, 30, tzinfo=UTC)) == date(2026, 7, 1)
    assert zones.minute_of_day(LONDON, datetime(2026, 6, 30, 23, 30, tzinfo=UTC)) == 30


def test_the_day_the_clocks_go_forward_is_23_hours_and_the_day_they_go_back_25():
    start, end = zones.day_span(LONDON, date(2026, 3, 29), date(2026, 3, 29))
    assert (end - start).total_seconds() == 23 * 3600
    start, end = zones.day_span(LONDON, date(2026, 10, 25), date(2026, 10, 25))
    assert (end - start).total_seconds() == 25 * 3600


def test_a_wall_time_in_the_spring_gap_is_the_instant_the_clocks_show_it_an_hour_later():
    # 01:30 does not exist on 29 March: it is read as 01:30 GMT, which the clocks show as 02:30 BST.
    assert zones.instant(LONDON, date(2026, 3, 29), 90) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    # 01:30 happens twice on 25 October: the first (BST) is meant.
    assert zones.instant(LONDON, date(2026, 10, 25), 90) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_the_end_of_the_day_is_the_next_midnight():
    assert zones.instant(LONDON, date(2026, 10, 24), 24 * 60) == datetime(2026, 10, 24, 23, 0, tzinfo=UTC)
    assert zones.instant(Package("UTC"), date(2026, 10, 24), 24 * 60) == datetime(2026, 10, 25, tzinfo=UTC)
