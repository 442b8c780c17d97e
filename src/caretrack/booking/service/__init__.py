"""Booking: availability, slots, holds, bookings, cancellation, rescheduling, outcomes.

One module per sub-concept: availability (hours, exceptions, free slots), checks (at save
time), bookings (holds and bookings), changes (cancel, reschedule, outcomes), reading.
Each action receives its typed command (booking.schemas), parsed by the API and the pages.

Every action is one transaction (rows, ledger, audit, events, emails). The rule that no two
active appointments of one doctor overlap is the database's on PostgreSQL (exclusion
constraint `appointments_no_overlap`); on SQLite each transaction that makes a booking
active first updates the doctor's lock row, which takes SQLite's write lock, so the overlap
check that follows cannot race. Every limit is checked here, at save time.

For other features (video consultations): `get_appointment(user, id)` returns an
appointment only to its patient, its doctor or an admin (404 otherwise), and
`is_participant(user, appointment)` says whether `user` is its patient or doctor.
"""

from __future__ import annotations

from caretrack.booking.service.availability import (
    LIMITS,
    check_limit,
    check_window,
    do_add_exception,
    do_remove_exception,
    do_set_availability,
    limit_label,
    list_slots,
    rules_for,
)
from caretrack.booking.service.bookings import HOLD_MINUTES, MAX_KEY_LENGTH, do_book, do_hold
from caretrack.booking.service.changes import (
    check_outcome,
    do_cancel,
    do_record_outcome,
    do_reschedule,
    record_outcome,
    refund_for,
)
from caretrack.booking.service.checks import Checked, check_slot
from caretrack.booking.service.common import SlotTaken, appointment_data, now
from caretrack.booking.service.reading import (
    doctor_has_patient,
    expired_hold_notice,
    get_appointment,
    has_consultation,
    hold_expired,
    is_participant,
    list_appointments,
)

__all__ = [
    "HOLD_MINUTES", "LIMITS", "MAX_KEY_LENGTH", "Checked", "SlotTaken", "appointment_data", "check_limit",
    "check_outcome", "check_slot", "check_window", "do_add_exception", "do_book", "do_cancel", "do_hold",
    "do_record_outcome", "do_remove_exception", "do_reschedule", "do_set_availability", "doctor_has_patient",
    "expired_hold_notice", "get_appointment", "has_consultation", "hold_expired", "is_participant", "limit_label",
    "list_appointments", "list_slots", "now", "record_outcome", "refund_for", "rules_for",
]
