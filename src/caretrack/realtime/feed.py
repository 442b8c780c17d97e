"""Readable lines for events: known types get a sentence, any other type a generic line.
Used by the admin activity feed page and by GET /api/v1/events (so the browser renders
live items with the same words as the page, from one source)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from caretrack.accounts.models import User
from caretrack.core.outbox.store import Delivered

KINDS: dict[str, str] = {
    "user": "Sign-ups and accounts",
    "invitation": "Invitations",
    "doctor": "Doctor applications",
    "booking": "Bookings",
    "task": "Task completions",
    "visit": "Visits",
    "assessment": "Assessments",
    "security": "Security",
    "message": "Messages",
    "care": "Care packages and notes",
    "incident": "Incidents",
}
KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def kind_label(kind: str) -> str:
    return KINDS.get(kind, kind.replace("_", " ").capitalize())


def _text(value: Any, default: str = "") -> str:
    if value is None or value == "":
        return default
    return str(value)[:200]


def _role(value: Any) -> str:
    role = _text(value, "user")
    return f"an {role}" if role[:1] in "aeiou" else f"a {role}"


Line = Callable[[str, str, dict[str, Any]], str]  # (actor, subject, data) -> sentence

LINES: dict[str, Line] = {
    "user.signed_up": lambda a, s, d: f"{a} signed up as {_role(d.get('role'))}",
    "user.deactivated": lambda a, s, d: f"{a} deactivated {_text(d.get('name') or d.get('email'), s)}",
    "user.reactivated": lambda a, s, d: f"{a} reactivated {_text(d.get('name') or d.get('email'), s)}",
    "user.locked": lambda a, s, d: f"Account {_text(d.get('email'), s)} was locked"
                                   + (f" after {d['failures']} failed sign-ins" if d.get("failures") else ""),
    "security.account_locked": lambda a, s, d: (
        f"Account {_text(d.get('email'), s)} was locked"
        + (f" after {d['failures']} failed sign-ins" if d.get("failures") else "")
    ),
    "user.invited": lambda a, s, d: f"{a} invited {_text(d.get('name'), s)}"
                                    + (f" ({d['email']})" if d.get("email") else "") + f" as {_role(d.get('role'))}",
    "invitation.accepted": lambda a, s, d: f"{a} accepted an invitation and joined as {_role(d.get('role'))}",
    "doctor.applied": lambda a, s, d: f"{a} applied to practise as a doctor",
    "doctor.approved": lambda a, s, d: f"{a} approved {_text(d.get('doctor_name'), s)}'s doctor application",
    "doctor.rejected": lambda a, s, d: f"{a} declined {_text(d.get('doctor_name'), s)}'s doctor application",
    "booking.created": lambda a, s, d: f"{a} booked an appointment"
                                       + (f" with {d['doctor_name']}" if d.get("doctor_name") else "")
                                       + (f" for {_when(d['starts_at'])}" if d.get("starts_at") else ""),
    "booking.cancelled": lambda a, s, d: f"{a} cancelled an appointment"
                                         + (f" with {d['doctor_name']}" if d.get("doctor_name") else "")
                                         + (f" for {_when(d['starts_at'])}" if d.get("starts_at") else ""),
    "booking.rescheduled": lambda a, s, d: f"{a} moved an appointment"
                                           + (f" with {d['doctor_name']}" if d.get("doctor_name") else "")
                                           + (f" to {_when(d['starts_at'])}" if d.get("starts_at") else ""),
    "booking.follow_up_offered": lambda a, s, d: f"{a} offered a follow-up consultation",
    "booking.follow_up_booked": lambda a, s, d: f"{a} booked the follow-up consultation offered",
    "consultation.summary_published": lambda a, s, d: f"{a} {'updated' if d.get('version', 1) > 1 else 'published'} "
                                                      "the visit summary",
    "booking.completed": lambda a, s, d: f"{a} completed the consultation"
                                         + (f" with {d['patient_name']}" if d.get("patient_name") else "")
                                         + (f" booked for {_when(d['starts_at'])}" if d.get("starts_at") else "")
                                         + (" by ending the call" if d.get("ended_call") else ""),
    "booking.no_show": lambda a, s, d: f"{a} marked that {_text(d.get('patient_name'), 'the patient')} did not attend "
                                       "the consultation"
                                       + (f" booked for {_when(d['starts_at'])}" if d.get("starts_at") else ""),
    "task.completed": lambda a, s, d: (
        f"{a} {'marked' if d.get('status') == 'not_done' else 'completed'} the task “{_text(d.get('title'), s)}”"
        + (" as not done" if d.get("status") == "not_done" else "")
        + (f" ({d['reason']})" if d.get("reason") else "")
        + (" — early, before its window opened: not counted" if d.get("early") else "")
        + (" — corrected" if d.get("corrected") else "")),
    "task.missed": lambda a, s, d: _missed(s, d),
    "care.package_updated": lambda a, s, d: f"{a} changed the details of care package {_text(d.get('package_id'), s)}"
                                            + (f" ({', '.join(map(str, d['fields']))})" if d.get("fields") else ""),
    "care.package_ended": lambda a, s, d: f"{a} ended care package {_text(d.get('package_id'), s)}"
                                          + (f": last day {d['ends_on']}" if d.get("ends_on") else ""),
    "care.package_archived": lambda a, s, d: f"{a} archived care package {_text(d.get('package_id'), s)}",
    "care.package_unarchived": lambda a, s, d: f"{a} unarchived care package {_text(d.get('package_id'), s)}",
    "care.carer_removed": lambda a, s, d: (
        f"{a} took {_text(d.get('carer_name'), 'a carer')} off care package {_text(d.get('package_id'), s)}"
        + (f"; their tasks went to {d['tasks_to_name']}" if d.get("tasks_to_name") and d.get("tasks")
           else f"; {d['tasks']} task{'s' if d['tasks'] != 1 else ''} need a carer" if d.get("tasks") else "")),
    "care.carer_replaced": lambda a, s, d: (
        f"{a} replaced {_text(d.get('carer_name'), 'a carer')} with {_text(d.get('replacement_name'), 'another')}"
        f" on care package {_text(d.get('package_id'), s)}"),
    "visit.checked_in": lambda a, s, d: f"{a} checked in to the {_visit(d, s)}" + (" — late" if d.get("late") else ""),
    "visit.checked_out": lambda a, s, d: f"{a} checked out of the {_visit(d, s)}"
                                         + (f" after {d['minutes']} minutes" if d.get("minutes") is not None else ""),
    "visit.late": lambda a, s, d: f"Late visit: {_text(d.get('carer_name'), 'the carer')} has not checked in to the "
                                  f"{_visit(d, s)}",
    "visit.missed": lambda a, s, d: f"Missed visit: {_text(d.get('carer_name'), 'the carer')} did not check in to the "
                                    f"{_visit(d, s)}",
    "visit.rota_changed": lambda a, s, d: f"{a} changed the rota of care package {_text(d.get('package_id'), s)}",
    "message.sent": lambda a, s, d: f"{a} sent a message",
    "message.read": lambda a, s, d: f"{a} read their messages",
    "message.thread_changed": lambda a, s, d: f"{a} changed a conversation: now {_text(d.get('state'), 'changed')}",
    "assessment.assigned": lambda a, s, d: _assigned(a, s, d),
    "assessment.submitted": lambda a, s, d: f"{a} handed in “{_text(d.get('title'), s)}” for marking",
    "care.note": lambda a, s, d: f"{a} left a note for {_audience(d)} on care package {_text(d.get('package_id'), '?')}"
                                 + (" with a task completion" if d.get("completion_id") else ""),
    "incident.raised": lambda a, s, d: f"{a} raised a {_text(d.get('severity'), 'new')}-severity incident "
                                       f"({_text(d.get('kind_label'), 'other').lower()}) on care package "
                                       f"{_text(d.get('package_id'), '?')}",
    "incident.acknowledged": lambda a, s, d: f"{a} acknowledged {_incident(d)}",
    "incident.closed": lambda a, s, d: f"{a} closed {_incident(d)}",
    "assessment.result": lambda a, s, d: _assessment(a, s, d),
    "assessment.completed": lambda a, s, d: _assessment(a, s, d),
}


def _when(value: Any) -> str:
    """An ISO instant as 'YYYY-MM-DD HH:MM UTC' (the page shows UTC throughout)."""
    text = _text(value)
    return f"{text[:10]} {text[11:16]} UTC" if len(text) >= 16 and text[10] == "T" else text


def _assigned(a: str, s: str, d: dict[str, Any]) -> str:
    title, carer = _text(d.get("title"), s), _text(d.get("carer_name"), "a carer")
    line = (f"{a} assigned {carer} a renewal of “{title}”" if d.get("reason") == "renewal"
            else f"{a} assigned “{title}” to {carer}")
    return line + (f", due {_text(d['due_on'])}" if d.get("due_on") else "")


def _missed(s: str, d: dict[str, Any]) -> str:
    """A window that closed short of its target: not done, with the carer's reason, or missed
    with nothing logged (events from before the distinction read as missed)."""
    task = f"The task “{_text(d.get('title'), s)}”" + (f" for {_text(d['client'])}" if d.get("client") else "")
    day = f" on {_text(d['on_date'])}" if d.get("on_date") else ""
    carer = _text(d.get("carer_name"))
    if d.get("outcome") == "not_done":
        return f"{task} was not done{day}: {_text(d.get('reason'), 'no reason given')}" + (
            f" (logged by {carer})" if carer else "")
    line = f"{task} was missed{day}" + (f" by {carer}" if carer else "")
    if "outcome" not in d:
        return line
    done, expected = d.get("done") or 0, d.get("expected")
    return line + (f": {done} of {expected} done, nothing logged for the rest" if done else ": nothing logged")


def _audience(d: dict[str, Any]) -> str:
    # A note's text and client are PHI and stay out of the event; who it is for is not.
    wanted = (("the office", d.get("for_office")), ("the next carer", d.get("for_next_carer")))
    return " and ".join(who for who, on in wanted if on) or "the team"


def _incident(d: dict[str, Any]) -> str:
    return (f"incident {_text(d.get('incident_id'), '?')} ({_text(d.get('kind_label'), 'other').lower()}, "
            f"{_text(d.get('severity'), '?')} severity) on care package {_text(d.get('package_id'), '?')}")


def _visit(d: dict[str, Any], s: str) -> str:
    """"09:00 visit to I. C. (care package 4)": the client by initials, the time on the package's clock."""
    when = _text(d.get("time"), "")
    return (f"{when} visit" if when else "visit") + (f" to {d['client']}" if d.get("client") else "") \
        + (f" (care package {d['package_id']})" if d.get("package_id") else f" ({s})" if s else "")


def _assessment(a: str, s: str, d: dict[str, Any]) -> str:
    line = f"{a} scored {_text(d.get('score'), '?')}% in “{_text(d.get('title'), s)}”"
    if "passed" in d:
        line += " — passed" if d["passed"] else " — not passed"
    return line


def describe(delivered: Delivered, names: dict[int, str]) -> str:
    event = delivered.event
    actor = names.get(event.actor_id, f"User {event.actor_id}") if event.actor_id is not None else "The system"
    subject = ""
    if event.subject_kind is not None:
        subject = f"{event.subject_kind} {event.subject_id}" if event.subject_id is not None else event.subject_kind
        if event.subject_kind == "user" and event.subject_id and event.subject_id.isdigit():
            subject = names.get(int(event.subject_id), subject)
    line = LINES.get(event.type)
    if line is not None:
        try:
            return line(actor, subject, event.data)
        except Exception:  # a renamed data key must not break the feed: fall back below
            pass
    words = event.type.replace("_", " ").replace(".", ": ", 1)
    return f"{actor} — {words}" + (f" ({subject})" if subject else "")


async def names_for(rows: Iterable[Delivered]) -> dict[int, str]:
    ids: set[int] = set()
    for row in rows:
        if row.event.actor_id is not None:
            ids.add(row.event.actor_id)
        if row.event.subject_kind == "user" and row.event.subject_id and row.event.subject_id.isdigit():
            ids.add(int(row.event.subject_id))
    if not ids:
        return {}
    return dict(await User.filter(id__in=ids).values_list("id", "full_name"))


def item(delivered: Delivered, names: dict[int, str]) -> dict[str, Any]:
    wire = delivered.event.to_wire()
    return {
        "seq": delivered.seq,
        "kind": delivered.event.kind,
        "kind_label": kind_label(delivered.event.kind),
        "actor_name": names.get(delivered.event.actor_id) if delivered.event.actor_id is not None else None,
        "text": describe(delivered, names),
        **wire,
    }
