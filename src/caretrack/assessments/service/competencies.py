"""Competencies: a carer's standing in each skill, the training matrix, and renewals. A
competency due for renewal (caretrack.assessments.service.standing: the last quarter of its
validity, at most 30 days) has its carer assigned a renewal by the periodic job
(caretrack.assessments.jobs); reading a page or the API never assigns one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from caretrack.accounts.models import User
from caretrack.assessments.models import AssessmentTemplate, Attempt, Competency, Question, Skill
from caretrack.assessments.service.attempts import OPEN, do_assign
from caretrack.assessments.service.standing import DUE_WINDOW, Standing, standing, standing_text
from caretrack.core.clock import utcnow
from caretrack.core.errors import Conflict, ValidationError
from caretrack.core.roles import Role


async def check_renewals(at: datetime | None = None, carer_id: int | None = None) -> int:
    """Assign a renewal to each carer whose competency is due (or has lapsed) and who has no
    open attempt at that skill. Returns how many were assigned."""
    at = at or utcnow()
    # DUE_WINDOW is the longest window: the query finds every candidate, `standing` decides.
    query = Competency.filter(expires_at__lte=at + DUE_WINDOW).prefetch_related("carer")
    if carer_id is not None:
        query = query.filter(carer_id=carer_id)
    assigned = 0
    for competency in await query:
        if not competency.carer.is_active or standing(competency, at) == Standing.COMPETENT:
            continue
        if await Attempt.exists(carer_id=competency.carer_id, template__skill_id=competency.skill_id,
                                status__in=list(OPEN)):
            continue
        template = await AssessmentTemplate.filter(skill_id=competency.skill_id, is_active=True).order_by("-id").first()
        if template is None or not await Question.exists(section__template_id=template.id):
            continue
        try:
            await do_assign(None, template.id, competency.carer_id, competency.expires_at.date(), reason="renewal",
                            at=at)
        except Conflict:  # assigned by a parallel check
            continue
        assigned += 1
    return assigned


@dataclass
class CompetencyRow:
    skill: Skill
    competency: Competency | None
    standing: Standing

    @property
    def text(self) -> str:
        """'valid until …', 'expires on …', 'expired on …' or 'not assessed yet'."""
        return standing_text(self.standing, self.competency)


async def carer_competencies(carer_id: int, at: datetime | None = None) -> list[CompetencyRow]:
    """Every skill, with this carer's standing in it."""
    at = at or utcnow()
    skills = list(await Skill.all().order_by("name"))
    held = {c.skill_id: c for c in await Competency.filter(carer_id=carer_id)}
    return [CompetencyRow(s, held.get(s.id), standing(held.get(s.id), at)) for s in skills]


@dataclass
class Matrix:
    carers: list[User]
    skills: list[Skill]
    cells: dict[tuple[int, int], tuple[Standing, Competency | None]]

    def cell(self, carer_id: int, skill_id: int) -> tuple[Standing, Competency | None]:
        return self.cells.get((carer_id, skill_id), (Standing.NOT_ASSESSED, None))

    def counts(self) -> dict[Standing, int]:
        totals = {s: 0 for s in Standing}
        for carer in self.carers:
            for skill in self.skills:
                totals[self.cell(carer.id, skill.id)[0]] += 1
        return totals


async def training_matrix(*, skill_id: int | None = None, only: str | None = None, q: str | None = None,
                          at: datetime | None = None) -> Matrix:
    """Carers × skills, filtered by skill, by standing (carers with at least one such cell)
    and by a name search."""
    at = at or utcnow()
    if only:
        try:
            only_standing = Standing(only)
        except ValueError:
            raise ValidationError(f"'{only[:20]}' is not one of: competent, due, expired, not_assessed.") from None
    else:
        only_standing = None
    carers = User.filter(role=Role.CARER, is_active=True).order_by("full_name")
    if q:
        carers = carers.filter(full_name__icontains=q.strip()[:100])
    skills = Skill.all().order_by("name")
    if skill_id is not None:
        skills = skills.filter(id=skill_id)
    carer_list, skill_list = list(await carers), list(await skills)
    competencies = await Competency.filter(carer_id__in=[c.id for c in carer_list] or [0],
                                           skill_id__in=[s.id for s in skill_list] or [0])
    cells: dict[tuple[int, int], tuple[Standing, Competency | None]] = {
        (c.carer_id, c.skill_id): (standing(c, at), c) for c in competencies}
    matrix = Matrix(carer_list, skill_list, cells)
    if only_standing is not None:
        matrix.carers = [c for c in carer_list if any(matrix.cell(c.id, s.id)[0] == only_standing
                                                      for s in skill_list)]
    return matrix


async def list_skills() -> list[Skill]:
    return list(await Skill.all().order_by("name"))


async def check_skill(skill_id: int) -> Skill:
    """The skill a command names (a task's required competency)."""
    skill = await Skill.get_or_none(id=skill_id)
    if skill is None:
        raise ValidationError(f"There is no skill with id {skill_id}.",
                              fields=[{"field": "required_skill_id", "message": "no such skill"}])
    return skill


@dataclass(frozen=True)
class Gap:
    """A skill that work needs and its carer does not hold current."""
    skill: str
    standing: Standing
    competency: Competency | None

    @property
    def reason(self) -> str:
        return f"Needs {self.skill} competency — {standing_text(self.standing, self.competency)}"


async def competence_gaps(needs: Iterable[tuple[int, int]], at: datetime | None = None
                          ) -> dict[tuple[int, int], Gap]:
    """For each (carer id, skill id) needed, the gap when that carer's skill is not current at
    `at` (expired or never assessed). Two queries however many are asked, none for none."""
    at = at or utcnow()
    wanted = set(needs)
    if not wanted:
        return {}
    skill_ids = {skill_id for _, skill_id in wanted}
    names = dict(await Skill.filter(id__in=skill_ids).values_list("id", "name"))
    held = {(c.carer_id, c.skill_id): c for c in await Competency.filter(
        carer_id__in={carer_id for carer_id, _ in wanted}, skill_id__in=skill_ids)}
    gaps = {}
    for need in sorted(wanted):
        competency = held.get(need)
        state = standing(competency, at)
        if not state.current:
            gaps[need] = Gap(str(names.get(need[1], f"skill {need[1]}")), state, competency)
    return gaps
