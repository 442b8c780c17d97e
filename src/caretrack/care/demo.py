"""Sample care data for `caretrack demo`: one package for the demo carer with three tasks and
three daily visits on its rota, and a medication assessment assigned to them. Idempotent:
skipped once any package exists."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from caretrack.accounts.models import User
from caretrack.assessments import service as assessments
from caretrack.assessments.schemas import QuestionIn, SectionIn, TemplateIn
from caretrack.care import service as care
from caretrack.care.models import CarePackage
from caretrack.care.schemas import PackageIn, TaskIn
from caretrack.care.service import rota
from caretrack.care.visit_schemas import RotaEntryChange
from caretrack.core.roles import Role


async def create_care_demo() -> None:
    admin = await User.filter(role=Role.ADMIN, email="admin@caretrack.example").first()
    carer = await User.filter(role=Role.CARER, email="carer@caretrack.example").first()
    if admin is None or carer is None or await CarePackage.exists():
        return
    package = await care.do_create_package(admin, PackageIn.model_validate({
        "client_name": "Edna Example", "address": "12 Sample Road",
        "care_notes": "Type 2 diabetes; walks with a frame.",
        "starts_on": (date.today() - timedelta(days=14)).isoformat(), "visit_times": "08:00,13:00,18:00",
        "time_zone": "Europe/London"}), "cli")
    await care.do_assign_carer(admin, package.id, carer.id, "cli")
    for title, target, period, start, end in (("Medication prompt", 3, "day", "07:30", "20:00"),
                                              ("Fluid chart", 1, "visit", "07:30", "20:00"),
                                              ("Weekly shopping", 1, "week", "09:00", "17:00")):
        await care.do_create_task(admin, package.id, TaskIn.model_validate({
            "carer_id": carer.id, "title": title, "target": target, "period": period, "window_start": start,
            "window_end": end}), "cli")
    for entry in await rota.list_rota(admin, package.id):  # the visit times' daily visits are the carer's
        await rota.do_change_visit(admin, entry.id, RotaEntryChange(carer_id=carer.id), "cli", at=datetime.now(UTC))
    template = await assessments.do_create_template(admin, TemplateIn.model_validate({
        "title": "Medication administration", "skill": "Medication", "pass_mark": 80, "validity_days": 365}), "cli")
    section = await assessments.do_add_section(admin, template.id, SectionIn(title="Knowledge"), "cli")
    await assessments.do_add_question(admin, section.id, QuestionIn.model_validate({
        "kind": "single", "prompt": "A client refuses their tablets. What do you do?",
        "options": ["Hide them in food", "Record the refusal and tell the office", "Try again tomorrow"],
        "correct": [1], "points": 2}), "cli")
    practice = await assessments.do_add_section(admin, template.id, SectionIn(title="Practice"), "cli")
    await assessments.do_add_question(admin, practice.id, QuestionIn.model_validate({
        "kind": "practical", "prompt": "Observed: prompting medication from a blister pack.", "points": 3}), "cli")
    await assessments.do_assign(admin, template.id, carer.id, date.today() + timedelta(days=14),
                                client_address="cli")
