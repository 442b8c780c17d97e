"""Assessment templates, attempts, marking and competencies (see the modules below). Renewals
of lapsing competencies are assigned by the periodic job, never on read."""

from caretrack.assessments.service.attempts import (
    OPEN,
    auto_points,
    carer_attempts,
    check_answers,
    do_assign,
    do_mark,
    do_save_answers,
    get_attempt,
    list_attempts_of_template,
    score_of,
    waiting_for_marking,
)
from caretrack.assessments.service.carers import active_carers, check_carer
from caretrack.assessments.service.competencies import (
    DUE_WINDOW,
    CompetencyRow,
    Matrix,
    Standing,
    carer_competencies,
    check_renewals,
    standing,
    training_matrix,
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
    "DUE_WINDOW", "OPEN", "CompetencyRow", "Matrix", "Standing", "TemplateView", "active_carers", "auto_points",
    "carer_attempts", "carer_competencies", "check_answers", "check_carer", "check_renewals",
    "do_add_question", "do_add_section", "do_assign", "do_create_template", "do_mark", "do_save_answers",
    "get_attempt", "get_template", "list_attempts_of_template", "list_templates", "score_of", "standing",
    "template_view", "training_matrix", "waiting_for_marking",
]
