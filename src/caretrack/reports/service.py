"""The reports: a carer's competency and training record, and a care package's task
compliance for a period. The figures are care.figures, as on the pages and in the API."""

from __future__ import annotations

from datetime import UTC, date, datetime

from caretrack.accounts.models import User
from caretrack.assessments import service as assessments
from caretrack.care import service as care
from caretrack.care import zones
from caretrack.care.models import MissedTask
from caretrack.core.errors import NotFound
from caretrack.core.roles import Role
from caretrack.reports.pdf import Report

PERIOD_TEXT = {"day": "a day", "visit": "a visit", "week": "a week"}


def _day(value: datetime | date | None) -> str:
    return value.strftime("%Y-%m-%d") if value else "-"


async def competency_record_pdf(viewer: User, carer_id: int, agency: str, at: datetime | None = None) -> bytes:
    at = at or datetime.now(UTC)
    carer = await User.get_or_none(id=carer_id, role=Role.CARER)
    if carer is None or (viewer.role != Role.ADMIN and viewer.id != carer_id):
        raise NotFound(f"No carer with id {carer_id}.")
    rows = await assessments.carer_competencies(carer.id, at)
    attempts = await assessments.carer_attempts(carer.id)
    first = min((a.assigned_at for a in attempts), default=at)
    doc = Report(agency, f"Competency and training record: {carer.full_name}",
                 f"{_day(first)} to {_day(at)}", at)
    doc.line_of_text(f"Carer: {carer.full_name} <{carer.email}>")
    counts = {s: sum(1 for r in rows if r.standing == s) for s in assessments.Standing}
    doc.line_of_text("Summary: " + ", ".join(f"{counts[s]} {s.label}" for s in assessments.Standing))
    doc.heading("Competencies")
    doc.rows_table(["Skill", "Status", "Level", "Achieved", "Expires"],
                   [[r.skill.name, r.standing.label, f"{r.competency.level}%" if r.competency else "-",
                     _day(r.competency.achieved_at if r.competency else None),
                     _day(r.competency.expires_at if r.competency else None)] for r in rows],
                   [60, 32, 20, 38, 38])
    doc.heading("Assessments")
    doc.rows_table(["Assessment", "Skill", "Status", "Score", "Result", "Assigned"],
                   [[a.template.title, a.template.skill.name, a.status.value.replace("_", " "),
                     f"{a.score}%" if a.score is not None else "-",
                     "-" if a.passed is None else ("passed" if a.passed else "not passed"), _day(a.assigned_at)]
                    for a in attempts],
                   [52, 34, 26, 18, 24, 34])
    return doc.bytes()


async def package_compliance_pdf(viewer: User, package_id: int, start: date, end: date, agency: str,
                                 client_address: str | None, at: datetime | None = None) -> bytes:
    at = at or datetime.now(UTC)
    care.check_period(start, end)
    package = await care.get_package(viewer, package_id, client_address)  # audited PHI read
    figures = await care.figures(viewer, start=start, end=end, package_id=package_id)
    rows = figures.rows
    task_ids = [r.task.id for r in rows]
    missed = list(await MissedTask.filter(task_id__in=task_ids or [0], on_date__gte=start, on_date__lte=end)
                  .prefetch_related("task").order_by("on_date"))
    doc = Report(agency, f"Task compliance: care package {package.id}", f"{start} to {end}", at)
    doc.line_of_text(f"Client: {package.client_name}")
    doc.line_of_text(f"Package dates: {package.starts_on} to {package.ends_on or 'open-ended'}; "
                     f"visits: {', '.join(package.visit_times) or 'none scheduled'}")
    doc.line_of_text(f"Overall compliance: {figures.total}")
    doc.heading("Tasks")
    doc.rows_table(["Task", "Carer", "Target", "Expected", "Done", "Not done", "Compliance"],
                   [[r.task.title, r.task.carer.full_name, f"{r.task.target} {PERIOD_TEXT[str(r.task.period)]}",
                     r.expected, r.done, r.not_done, f"{r.percent}%"] for r in rows],
                   [46, 34, 26, 20, 16, 20, 24])
    doc.heading("Missed task windows")
    doc.rows_table(["Date", "Task", "Done", "Expected"],
                   [[m.on_date.isoformat(), m.task.title, m.done, m.target] for m in missed], [30, 80, 30, 30])
    _notes_section(doc, await care.office_notes(viewer, package_id, *zones.day_span(package, start, end),
                                                client_address))
    return doc.bytes()


def _notes_section(doc: Report, notes: list[care.NoteView]) -> None:
    """The carers' notes for the office in the period (an audited PHI read), oldest first."""
    doc.heading("Notes for the office")
    if not notes:
        doc.line_of_text("No notes for the office in this period.")
    for view in notes:
        about = f" (with {view.task_title})" if view.task_title else ""
        doc.line_of_text(f"{view.note.written_at:%Y-%m-%d %H:%M} UTC - {view.author_name}{about}: {view.text}")
