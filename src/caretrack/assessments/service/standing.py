"""A carer's standing in a skill at an instant, and the words for it. A competency is due for
renewal in the last quarter of its validity, and at most DUE_WINDOW before it lapses: a skill
valid for a year is due in its last 30 days, one valid for a week in its last 1¾ days, so a
freshly passed skill is always current (a fixed 30 days would make any skill valid for 30 days
or less due, and its renewal assigned, the moment it is passed)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum

from caretrack.assessments.models import Competency
from caretrack.core.clock import utcnow

DUE_WINDOW = timedelta(days=30)  # the longest "due soon" window (skills valid for 120 days or more)
DUE_SHARE = 4  # due in the last 1/DUE_SHARE of the validity, when that is shorter


class Standing(StrEnum):
    COMPETENT = "competent"
    DUE = "due"
    EXPIRED = "expired"
    NOT_ASSESSED = "not_assessed"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")

    @property
    def current(self) -> bool:
        """Still valid at the instant (a due competency has not lapsed yet)."""
        return self in (Standing.COMPETENT, Standing.DUE)


def due_window(validity: timedelta) -> timedelta:
    """How long before it lapses a competency valid for `validity` is due for renewal."""
    return min(DUE_WINDOW, validity / DUE_SHARE)


def due_from(competency: Competency) -> datetime:
    """The instant a competency becomes due for renewal (its validity is the time from its
    achievement to its expiry, so no template is needed to tell)."""
    return competency.expires_at - due_window(competency.expires_at - competency.achieved_at)


def standing(competency: Competency | None, at: datetime | None = None) -> Standing:
    at = at or utcnow()
    if competency is None:
        return Standing.NOT_ASSESSED
    if competency.expires_at <= at:
        return Standing.EXPIRED
    if at >= due_from(competency):
        return Standing.DUE
    return Standing.COMPETENT


def _day(value: datetime | date) -> str:
    return value.strftime("%Y-%m-%d")


def standing_text(state: Standing, competency: Competency | None) -> str:
    """The words after a standing's badge: 'valid until 2026-11-20', 'expires on 2026-11-20',
    'expired on 2026-11-20' or 'not assessed yet'."""
    if competency is None or state == Standing.NOT_ASSESSED:
        return "not assessed yet"
    expiry = _day(competency.expires_at)
    return {Standing.COMPETENT: f"valid until {expiry}", Standing.DUE: f"due for renewal, expires on {expiry}",
            Standing.EXPIRED: f"expired on {expiry}"}[state]
