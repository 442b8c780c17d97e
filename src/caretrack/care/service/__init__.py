"""Care packages, tasks and completions. Every action is one transaction with its audit rows
and live events; `check_…` functions validate and raise domain errors. The actions take the
typed commands of caretrack.care.schemas; ownership (a carer reaches only their own packages
and tasks, anything else is 404) lives in the modules below."""

from caretrack.care.models import NOT_DONE_REASONS
from caretrack.care.service.completions import (
    FUTURE_GRACE,
    CompletionView,
    check_early,
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
    check_on_package,
    client_names,
    do_archive_package,
    do_assign_carer,
    do_create_package,
    do_end_package,
    do_unarchive_package,
    do_unassign_carer,
    do_update_package,
    get_package,
    list_packages,
    package_for,
)
from caretrack.care.service.progress import (
    CarerDay,
    Figures,
    ProgressRow,
    TaskProgress,
    carer_today,
    check_period,
    daily_done,
    day_start,
    done_counts,
    expected_in,
    figures,
    latest_statuses,
    package_today,
    period_bounds,
    period_of,
    progress,
)
from caretrack.care.service.staffing import do_remove_carer, do_replace_carer
from caretrack.care.service.tasks import (
    blocked_tasks,
    do_create_task,
    do_update_task,
    get_task,
    task_package,
    task_payload,
    task_warnings,
)
from caretrack.care.service.timeline import Timeline, package_timeline

__all__ = [
    "FUTURE_GRACE", "NOT_DONE_REASONS", "PACKAGE_PHI", "CarerDay", "CompletionView", "Figures", "ProgressRow",
    "TaskProgress", "blocked_tasks", "can_see_package", "carer_today", "check_early", "check_missed",
    "check_on_package", "check_period", "check_when", "client_names", "daily_done", "day_start",
    "do_archive_package", "do_assign_carer", "do_correct_completion", "do_create_package", "do_create_task",
    "do_end_package", "do_log_completion", "do_remove_carer", "do_replace_carer", "do_unarchive_package",
    "do_unassign_carer", "do_update_package", "do_update_task", "done_counts", "expected_in", "figures",
    "get_package", "get_task", "latest_statuses", "list_completions", "list_packages", "package_for", "package_today",
    "period_bounds", "period_of", "progress", "task_package", "task_payload", "task_warnings",
    # handover notes and incidents
    "Handover", "IncidentView", "NoteView", "Timeline", "do_acknowledge_incident", "do_close_incident",
    "do_raise_incident", "do_write_note", "get_incident", "handover_for", "handovers", "list_incidents",
    "office_notes", "package_timeline",
]
