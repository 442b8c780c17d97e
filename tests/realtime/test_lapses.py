"""The bus's schedule of sign-in checks: earliest first, re-set and dropped sockets forgotten."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from caretrack.realtime.lapses import Lapses

T = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_the_earliest_moment_comes_due_first_and_each_key_once():
    lapses: Lapses[str] = Lapses()
    assert lapses.earliest() is None and lapses.due(T) == []
    assert lapses.set("page", T + timedelta(minutes=30)) is True
    assert lapses.set("call", T + timedelta(minutes=29)) is True
    assert lapses.set("token", T + timedelta(hours=2)) is False  # not earlier: the loop sleeps on
    assert lapses.earliest() == T + timedelta(minutes=29)
    assert lapses.due(T + timedelta(minutes=29, seconds=30)) == ["call"]
    assert lapses.due(T + timedelta(minutes=30)) == ["page"]
    assert len(lapses) == 1 and lapses.earliest() == T + timedelta(hours=2)


def test_a_moved_or_dropped_key_keeps_only_its_latest_moment():
    lapses: Lapses[str] = Lapses()
    lapses.set("call", T + timedelta(minutes=1))
    lapses.set("call", T + timedelta(minutes=20))  # renewed
    lapses.set("page", T + timedelta(minutes=2))
    lapses.drop("page")  # the socket closed
    assert lapses.earliest() == T + timedelta(minutes=20)
    assert lapses.due(T + timedelta(minutes=10)) == []
    assert lapses.due(T + timedelta(minutes=20)) == ["call"]


def test_many_sockets_coming_and_going_leave_no_stale_entries_behind():
    lapses: Lapses[int] = Lapses()
    for n in range(10_000):
        lapses.set(n, T + timedelta(seconds=n))
        lapses.drop(n)
    lapses.set(-1, T)
    assert len(lapses) == 1 and len(lapses._heap) < 200
    assert lapses.due(T + timedelta(days=1)) == [-1]
