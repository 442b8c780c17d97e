"""The pages' forms, parsed into booking's typed commands (booking.schemas). A form sends
text: each field is converted here with a message that names it, so the service receives
the same model from a page as from the API."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from starlette.datastructures import FormData

from caretrack.booking import applications
from caretrack.booking import slots as slotlib
from caretrack.booking.models import Availability
from caretrack.booking.schemas import (
    ApplicationInput,
    AvailabilityIn,
    BookSlot,
    CancelRequest,
    Decision,
    ExceptionIn,
    HoldSlot,
    OutcomeRequest,
    ReminderPolicyIn,
    RescheduleRequest,
    WeeklyWindow,
)
from caretrack.booking.service import LIMITS, check_limit, check_window, limit_label
from caretrack.core.errors import ValidationError
from caretrack.core.validation import Problems, id_from_text, parse_command

APPLICATION_FIELDS = ("licence_number", "licence_body", "licence_expires_on", "specialty", "languages",
                      "biography", "fee_credits")
MAX_REVIEW_REASON = 1000
MAX_CANCEL_REASON = 300


def _text(form: FormData, name: str) -> str:
    return str(form.get(name, ""))


def application_values(form: FormData) -> dict[str, str]:
    """The application's text fields, as typed (the page shows them again after an error)."""
    return {name: _text(form, name) for name in APPLICATION_FIELDS}


def application(values: dict[str, str], today: date) -> ApplicationInput:
    """The application, or a ValidationError naming every wrong field at once."""
    problems = Problems()
    expires: date | None = None
    fee: int | None = None
    with problems.check("licence_expires_on"):
        try:
            expires = date.fromisoformat(values["licence_expires_on"].strip())
        except ValueError:
            raise ValidationError(f"The licence expiry '{values['licence_expires_on'][:20]}' is not a date "
                                  "(YYYY-MM-DD).") from None
    with problems.check("fee_credits"):
        try:
            fee = int(values["fee_credits"].strip())
        except ValueError:
            raise ValidationError(f"The fee '{values['fee_credits'][:20]}' is not a whole number of "
                                  "credits.") from None
    with problems.check("form"):
        applications.check_fields(values, values["languages"].split(","), expires, fee, today)
    problems.raise_any()
    assert expires is not None and fee is not None  # else a problem was raised
    return ApplicationInput(licence_number=values["licence_number"], licence_body=values["licence_body"],
                            licence_expires_on=expires, specialty=values["specialty"],
                            languages=values["languages"].split(","), biography=values["biography"],
                            fee_credits=fee)


def availability(form: FormData, current: Availability | None) -> AvailabilityIn:
    """Hours for each weekday with a start or an end; a blank limit keeps its current value.
    Every wrong field is refused at once, under its form field's name."""
    problems = Problems()
    time_zone = _text(form, "time_zone").strip()
    with problems.check("time_zone"):
        slotlib.zone(time_zone)
    weekly = []
    for day in range(7):
        start, end = _text(form, f"start_{day}").strip(), _text(form, f"end_{day}").strip()
        if not (start or end):
            continue
        with problems.check(f"start_{day}"):
            slotlib.parse_hhmm(start, f"{slotlib.WEEKDAYS[day]} start time")
        with problems.check(f"end_{day}"):
            slotlib.parse_hhmm(end, f"{slotlib.WEEKDAYS[day]} end time")
        if f"start_{day}" in problems.fields or f"end_{day}" in problems.fields:
            continue
        window = WeeklyWindow(weekday=day, start=start, end=end)
        with problems.check(f"end_{day}"):
            check_window(window)
        weekly.append(window)
    limits: dict[str, Any] = {}
    for name in LIMITS:
        text = _text(form, name).strip()
        if not text:
            if current is not None:
                limits[name] = getattr(current, name)
            continue
        with problems.check(name):
            try:
                number = int(text)
            except ValueError:
                raise ValidationError(f"{limit_label(name)} '{text[:20]}' is not a whole number.") from None
            limits[name] = check_limit(name, number)
    problems.raise_any()
    return AvailabilityIn(time_zone=time_zone, weekly=weekly, **limits)


def exception(form: FormData) -> ExceptionIn:
    kind, on_date = _text(form, "kind"), _text(form, "on_date")
    if kind != "off" and kind != "extra":
        raise ValidationError(f"An exception is 'off' or 'extra', not '{kind}'.")
    try:
        day = date.fromisoformat(on_date)
    except ValueError:
        raise ValidationError(f"'{on_date[:20]}' is not a date (YYYY-MM-DD).") from None
    return ExceptionIn(on_date=day, kind=kind, start=_text(form, "start").strip() or None,
                       end=_text(form, "end").strip() or None)


def review(form: FormData) -> Decision:
    approve, reason = form.get("decision") == "approve", _text(form, "reason")
    if len(reason.strip()) > MAX_REVIEW_REASON:
        raise ValidationError("Give the doctor a reason for the rejection (5 to 1000 characters)." if not approve
                              else f"Keep the reason to {MAX_REVIEW_REASON} characters.")
    return Decision(approve=approve, reason=reason.strip())


def hold(form: FormData) -> HoldSlot:
    doctor_id = id_from_text(_text(form, "doctor_id"), "doctor_id")  # a 422 naming the field
    if doctor_id is None:
        raise ValidationError("Choose a slot from the list.", fields=[{"field": "doctor_id", "message": "missing"}])
    try:
        starts_at = datetime.fromisoformat(_text(form, "starts_at"))
    except ValueError:
        raise ValidationError("Choose a slot from the list.") from None
    return HoldSlot(doctor_id=doctor_id, starts_at=starts_at, consultation_type_id=consultation_type(form))


def consultation_type(form: FormData) -> int | None:
    return id_from_text(_text(form, "consultation_type_id"), "consultation_type_id")


def book(doctor_id: int, starts_at: datetime, consultation_type_id: int | None = None) -> BookSlot:
    """The page books the slot its hold is on, of the type chosen there (or when holding)."""
    return BookSlot(doctor_id=doctor_id, starts_at=starts_at, consultation_type_id=consultation_type_id)


def cancel(form: FormData) -> CancelRequest:
    return CancelRequest(reason=_text(form, "reason").strip()[:MAX_CANCEL_REASON])


def reschedule(form: FormData) -> RescheduleRequest | None:
    """None when no new time was chosen (the page says so)."""
    try:
        return RescheduleRequest(starts_at=datetime.fromisoformat(_text(form, "starts_at")))
    except ValueError:
        return None


def outcome(form: FormData) -> OutcomeRequest:
    value = _text(form, "outcome")
    if value not in ("completed", "no_show"):
        raise ValidationError(f"The outcome is 'completed' or 'no_show', not '{value}'.")
    return OutcomeRequest(outcome=value)


DURATION = re.compile(r"^(\d{1,5})\s*(d|h|m|min|mins|minutes?|hours?|days?)$")
UNIT_MINUTES = {"d": 1440, "h": 60, "m": 1}


def describe_offset(minutes: int) -> str:
    """1440 -> '1d', 90 -> '90m': how the reminders form shows an offset."""
    for unit, size in (("d", 1440), ("h", 60)):
        if minutes % size == 0:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"


def reminder_policy(form: FormData) -> ReminderPolicyIn:
    """'1d, 1h, 30m' (before the start) and the grace in minutes."""
    offsets = []
    for part in [p.strip().lower() for p in re.split(r"[,;]", _text(form, "offsets")) if p.strip()]:
        match = DURATION.match(part)
        if not match:
            raise ValidationError(f"Reminder times: '{part[:20]}' is not a duration; write for example "
                                  "'1d, 1h, 30m' (days, hours, minutes before the start).")
        offsets.append(int(match.group(1)) * UNIT_MINUTES[match.group(2)[0]])
    return parse_command(ReminderPolicyIn, {"offsets": offsets, "grace_minutes": _text(form, "grace_minutes").strip()})
