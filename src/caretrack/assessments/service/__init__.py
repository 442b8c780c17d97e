"""Assessment templates, attempts, marking and competencies (see the modules below). Renewals
of lapsing competencies are assigned by the periodic job, never on read."""

from caretrack.assessments.service.attempts import (
    OPEN,
    DueStatus,
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
    "DUE_WINDOW", "OPEN", "CompetencyRow", "DueStatus", "Gap", "Matrix", "Standing", "TemplateView", "active_carers",
    "auto_points", "carer_attempts", "carer_competencies", "check_answers", "check_carer", "check_renewals",
    "check_skill", "competence_gaps", "list_skills", "due_from", "due_status", "due_text", "due_window", "points_text", "QuestionScore",
    "question_scores", "standing_text",
    "do_add_question", "do_add_section", "do_assign", "do_create_template", "do_mark", "do_save_answers",
    "get_attempt", "get_template", "list_attempts_of_template", "list_templates", "score_of", "standing",
    "template_view", "training_matrix", "waiting_for_marking",
]
