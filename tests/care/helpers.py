"""Care fixtures built through the services, as an admin would."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pyotp

from caretrack.accounts.models import User
from caretrack.assessments import service as assessments
from caretrack.assessments.schemas import QuestionIn, SectionIn, TemplateIn
from caretrack.care import service as care
from caretrack.care.schemas import PackageIn, TaskIn
from caretrack.care.service import rota
from caretrack.care.visit_schemas import RotaEntryChange
from caretrack.core.roles import Role
from tests.helpers import make_user

# Long before any instant a test acts at, so a package is running "today" whatever today is.
LONG_AGO = date(2025, 1, 1)


async def admin_user(email: str = "boss@example.org") -> tuple[User, str]:
    secret = pyotp.random_base32()
    return await make_user(Role.ADMIN, email, totp_secret=secret, name="Bo Boss"), secret


async def package_with_task(admin: User, carer: User, *, title: str = "Medication prompt", target: int = 3,
                            period: str = "day", starts_on: date | None = None, visit_times: str = "08:00,13:00,18:00",
                            client_name: str = "Mrs Iris Client", at: datetime | None = None):
    """A package and a task, which by default has had its target since the package started."""
    starts_on = starts_on or LONG_AGO
    package = await care.do_create_package(admin, PackageIn.model_validate({
        "client_name": client_name, "address": "1 High Street", "care_notes": "Diabetic; likes tea",
        "starts_on": starts_on.isoformat(), "visit_times": visit_times}), None)
    await care.do_assign_carer(admin, package.id, carer.id, None)
    task = await care.do_create_task(admin, package.id, TaskIn.model_validate({
        "carer_id": carer.id, "title": title, "target": target, "period": period,
        "window_start": "00:00", "window_end": "24:00"}), None, at=at or datetime.combine(starts_on, time(0), UTC))
    return package, task


async def template(admin: User, *, skill: str = "Medication", validity_days: int = 365, manual: bool = True):
    t = await assessments.do_create_template(admin, TemplateIn.model_validate({
        "title": f"{skill} check", "skill": skill, "pass_mark": 60, "validity_days": validity_days}), None)
    section = await assessments.do_add_section(admin, t.id, SectionIn(title="Knowledge"), None)
    q1 = await assessments.do_add_question(admin, section.id, QuestionIn.model_validate({
        "kind": "single", "prompt": "When do you give a PRN dose?", "options": ["Never", "When needed", "Always"],
        "correct": [1], "points": 2}), None)
    q2 = await assessments.do_add_question(admin, section.id, QuestionIn.model_validate({
        "kind": "multiple", "prompt": "Which are the five rights?", "options": ["Right person", "Right dose",
                                                                                 "Right colour"],
        "correct": [0, 1], "points": 2}), None)
    questions = [q1, q2]
    if manual:
        practical = await assessments.do_add_section(admin, t.id, SectionIn(title="Practice"), None)
        questions.append(await assessments.do_add_question(admin, practical.id, QuestionIn.model_validate({
            "kind": "text", "prompt": "Describe how you record a refusal.", "points": 3}), None))
        questions.append(await assessments.do_add_question(admin, practical.id, QuestionIn.model_validate({
            "kind": "practical", "prompt": "Observed: administering from a blister pack.", "points": 3}), None))
    return t, questions


async def staff_visits(admin: User, package, carer: User) -> None:
    """Give the package's visits nobody is assigned to (a new package's visit times) to `carer`."""
    at = datetime.combine(package.starts_on, time(0), UTC)
    for entry in await rota.list_rota(admin, package.id):
        if entry.carer_id is None:
            await rota.do_change_visit(admin, entry.id, RotaEntryChange(carer_id=carer.id), None, at=at)
