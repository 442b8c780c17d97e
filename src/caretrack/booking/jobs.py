"""Booking's jobs: reminders before each consultation, and re-planning them when the admins
change the policy (caretrack.booking.service.reminders)."""

from __future__ import annotations

from caretrack.booking.service import reminders
from caretrack.core.queue import job

job(reminders.REMIND, max_attempts=5)(reminders.send_reminder)
job(reminders.REPLAN, max_attempts=5)(reminders.replan_upcoming)
