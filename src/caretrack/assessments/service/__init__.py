"""Assessment templates, attempts, marking and competencies (see the modules below). Renewals
of lapsing competencies are assigned by the periodic job, never on read."""

from caretrack.assessments.models import DueStatus
from caretrack.assessments.service.attempts import (
    OPEN,
    QuestionScore,
    auto_points,
    carer_attempts,
    check_answers,
    do_assign,
    do_mark,
    do_save_answers,
    due_status,
    due_text,
    get_attempt,
    list_attempts_of_template,
    points_text,
    question_scores,
    score_of,
    waiting_for_marking,
)
from caretrack.assessments.service.carers import active_carers, check_carer
from caretrack.assessments.service.competencies import (
    CompetencyRow,
    Gap,
    Matrix,
    carer_competencies,
    check_renewals,
    check_skill,
    competence_gaps,
    list_skills,
    training_matrix,
)
from caretrack.assessments.service.standing import (
    DUE_WINDOW,
    Standing,
    due_from,
    due_window,
    standing,
    standing_text,
)
from caretrack.assessments.service.templates import (
    TemplateView,
    do_add_question,
    do_add_section,
    do_create_template,
    get_template,
    list_templates,
    template_view,
)

__all__ = [
    "DUE_WINDOW", "OPEN", "CompetencyRow", "DueStatus", "Gap", "Matrix", "QuestionScore", "Standing",
    "TemplateView", "active_carers", "auto_points", "carer_attempts", "carer_competencies", "check_answers",
    "check_carer", "check_renewals", "check_skill", "competence_gaps", "do_add_question", "do_add_section",
    "do_assign", "do_create_template", "do_mark", "do_save_answers", "due_from", "due_status", "due_text",
    "due_window", "get_attempt", "get_template", "list_attempts_of_template", "list_skills", "list_templates",
    "points_text", "question_scores", "score_of", "standing", "standing_text", "template_view", "training_matrix",
    "waiting_for_marking",
]
