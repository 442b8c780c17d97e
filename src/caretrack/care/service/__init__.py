"""Care packages, tasks and completions. Every action is one transaction with its audit rows
and live events; `check_…` functions validate and raise domain errors. The actions take the
typed commands of caretrack.care.schemas; ownership (a carer reaches only their own packages
and tasks, anything else is 404) lives in the modules below."""

from caretrack.care.service.completions import (
    FUTURE_GRACE,
    NOT_DONE_REASONS,
    CompletionView,
    check_when,
    do_correct_completion,
    do_log_completion,
    list_completions,
)
from caretrack.care.service.incidents import (
    IncidentView,
    do_acknowledge_incident,
    do_close_incident,
    do_raise_incident,
    get_incident,
    list_incidents,
)
from caretrack.care.service.missed import check_missed
from caretrack.care.service.notes import Handover, NoteView, do_write_note, handover_for, handovers, office_notes
from caretrack.care.service.packages import (
    PACKAGE_PHI,
    can_see_package,
    client_names,
    do_assign_carer,
    do_create_package,
    do_unassign_carer,
    get_package,
    list_packages,
)
from caretrack.care.service.progress import (
    CarerDay,
    ProgressRow,
    TaskProgress,
    carer_today,
    check_period,
    daily_done,
    day_start,
    done_counts,
    expected_in,
    latest_statuses,
    period_bounds,
    period_of,
    progress,
)
from caretrack.care.service.tasks import do_create_task, do_update_task, get_task, task_payload
from caretrack.care.service.timeline import Timeline, package_timeline

__all__ = [
    "FUTURE_GRACE", "NOT_DONE_REASONS", "PACKAGE_PHI", "CarerDay", "CompletionView", "ProgressRow", "TaskProgress",
    "can_see_package", "carer_today", "check_missed", "check_period", "check_when",
    "client_names", "daily_done", "day_start", "do_assign_carer", "do_correct_completion", "do_create_package",
    "do_create_task", "do_log_completion", "do_unassign_carer", "do_update_task", "done_counts", "expected_in",
    "get_package", "get_task", "latest_statuses", "list_completions", "list_packages", "period_bounds",
    "period_of", "progress", "task_payload",
    # handover notes and incidents
    "Handover", "IncidentView", "NoteView", "Timeline", "do_acknowledge_incident", "do_close_incident",
    "do_raise_incident", "do_write_note", "get_incident", "handover_for", "handovers", "list_incidents",
    "office_notes", "package_timeline",
]
