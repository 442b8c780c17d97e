"""Care packages (client PHI sealed with caretrack.core.crypto), assigned carers, tasks with
targets and due windows, and completions (idempotent, corrections keep the original)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from caretrack.accounts.models import User
    from caretrack.assessments.models import Skill


class Period(StrEnum):
    DAY = "day"      # target per day
    VISIT = "visit"  # target per scheduled visit
    WEEK = "week"    # target per ISO week


class CompletionStatus(StrEnum):
    DONE = "done"
    NOT_DONE = "not_done"


# Why a task was not done: one of these, never free text (a reason is stored and sent in events
# unsealed; anything more goes in the note, which is sealed).
NOT_DONE_REASONS = ("Client declined", "Client not at home", "Not needed today", "Supplies ran out", "Other")


class CarePackage(Model):
    id = fields.IntField(primary_key=True)
    # PHI, ciphertext only (crypto.seal with context "care_packages.<column>").
    client_name = fields.TextField()
    address = fields.TextField(null=True)
    care_notes = fields.TextField(null=True)
    access_notes = fields.TextField(null=True)  # getting in: key safe, door, pets
    allergies = fields.TextField(null=True)
    next_of_kin_name = fields.TextField(null=True)
    next_of_kin_relationship = fields.TextField(null=True)
    next_of_kin_phone = fields.TextField(null=True)
    gp_practice = fields.TextField(null=True)
    gp_phone = fields.TextField(null=True)
    starts_on = fields.DateField()
    ends_on = fields.DateField(null=True)
    # The rota's start times ("08:00,13:00,18:00", package-local, whatever the weekdays): derived
    # from the active RotaEntry rows and rewritten with them (caretrack.care.service.rota), for
    # readers that only need the day's times. The rota is the record.
    visit_times = fields.CharField(max_length=200, default="")
    # The client's wall clock (IANA name): the package's days, task windows and visit times are
    # local to it (caretrack.care.zones).
    time_zone = fields.CharField(max_length=64, default="UTC")
    created_by = fields.ForeignKeyField("caretrack.User", related_name="created_packages", null=True,
                                        on_delete=fields.SET_NULL)
    created_at = fields.DatetimeField(auto_now_add=True)
    # Archived: hidden from the lists and from its carers, read-only for admins.
    archived_at = fields.DatetimeField(null=True)

    class Meta:
        table = "care_packages"


class PackageCarer(Model):
    id = fields.IntField(primary_key=True)
    package = fields.ForeignKeyField("caretrack.CarePackage", related_name="carers", on_delete=fields.CASCADE)
    carer = fields.ForeignKeyField("caretrack.User", related_name="care_assignments", on_delete=fields.CASCADE)
    assigned_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "care_package_carers"
        unique_together = (("package", "carer"),)


class CareTask(Model):
    id = fields.IntField(primary_key=True)
    package = fields.ForeignKeyField("caretrack.CarePackage", related_name="tasks", on_delete=fields.CASCADE)
    carer = fields.ForeignKeyField("caretrack.User", related_name="care_tasks", on_delete=fields.RESTRICT)
    package_id: int  # the key columns, for the type checker
    carer_id: int
    title = fields.CharField(max_length=120)
    target = fields.IntField()  # completions per period
    period = fields.CharEnumField(Period, max_length=8)
    window_start = fields.IntField(default=0)  # minutes after midnight on the package's clock
    window_end = fields.IntField(default=24 * 60)
    is_active = fields.BooleanField(default=True)
    # Its carer was taken off the package with nobody named to take it over: the task keeps them
    # as its last carer, nobody can log it, and the package page asks for a carer.
    needs_carer = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    # The competency the task needs (caretrack.assessments): a carer without it current is
    # warned of at assignment and shown the task as blocked.
    required_skill: fields.ForeignKeyNullableRelation[Skill] = fields.ForeignKeyField(
        "caretrack.Skill", related_name="tasks", null=True, on_delete=fields.RESTRICT)
    required_skill_id: int | None

    class Meta:
        table = "care_tasks"


class CareTaskTarget(Model):
    """A task's target and period from a package-local day on, as the admin set it (its history).

    Written with every create, change of target or period, and end of a task. A change applies to
    its whole day: the day's last row counts; a day before the first row expects nothing."""

    id = fields.IntField(primary_key=True)
    task: fields.ForeignKeyRelation[CareTask] = fields.ForeignKeyField(
        "caretrack.CareTask", related_name="targets", on_delete=fields.CASCADE)
    task_id: int  # the key column, for the type checker
    effective_on = fields.DateField()  # the package's date
    target = fields.IntField()
    period = fields.CharEnumField(Period, max_length=8)
    active = fields.BooleanField()
    recorded_at = fields.DatetimeField()

    class Meta:
        table = "care_task_targets"
        indexes = (("task_id", "effective_on"),)


class TaskCompletion(Model):
    id = fields.IntField(primary_key=True)
    task = fields.ForeignKeyField("caretrack.CareTask", related_name="completions", on_delete=fields.CASCADE)
    carer = fields.ForeignKeyField("caretrack.User", related_name="task_completions", on_delete=fields.RESTRICT)
    task_id: int  # the key columns, for the type checker
    carer_id: int
    # A retry of the same request carries the same key; the unique index records it once.
    idempotency_key = fields.CharField(max_length=64, unique=True)
    status = fields.CharEnumField(CompletionStatus, max_length=8)
    reason = fields.CharField(max_length=200, null=True)  # why not done
    note = fields.TextField(null=True)  # PHI, sealed ("task_completions.note")
    occurred_at = fields.DatetimeField(db_index=True)
    recorded_at = fields.DatetimeField(auto_now_add=True)
    # A correction is a new row pointing at the one it replaces, which stays (superseded).
    corrects = fields.ForeignKeyField("caretrack.TaskCompletion", related_name="corrections", null=True,
                                      on_delete=fields.RESTRICT)
    corrects_id: int | None
    superseded_at = fields.DatetimeField(null=True)
    # Done before the task's window opened on the package's clock, kept because the agency marks
    # such logs (CARETRACK_CARE_EARLY_LOGS=mark) rather than refusing them; never counted.
    early = fields.BooleanField(default=False)

    class Meta:
        table = "task_completions"
        indexes = (("task_id", "occurred_at"),)  # the figures count by task over a period


# A task window that closed short of its target: one row per task and (package-local) day, so
# the missed-task event is sent once.
class MissedTask(Model):
    id = fields.IntField(primary_key=True)
    task = fields.ForeignKeyField("caretrack.CareTask", related_name="misses", on_delete=fields.CASCADE)
    on_date = fields.DateField()
    done = fields.IntField()
    target = fields.IntField()
    # Why the carer logged it not done (the latest reason in the period); None: missed, nothing logged.
    reason = fields.CharField(max_length=200, null=True)
    recorded_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "care_missed_tasks"
        unique_together = (("task", "on_date"),)


class RotaEntry(Model):
    """A visit on a package's rota: weekly on some weekdays at a start time on the package's clock, by one carer.

    Removing an entry ends it (is_active false): the visits recorded against it stay."""

    id = fields.IntField(primary_key=True)
    package: fields.ForeignKeyRelation[CarePackage] = fields.ForeignKeyField(
        "caretrack.CarePackage", related_name="rota", on_delete=fields.CASCADE)
    # One of the package's carers; None while nobody is assigned (visit times given with the
    # package, and those migrated from visit_times on a package that had no carer).
    carer: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "caretrack.User", related_name="rota_entries", null=True, on_delete=fields.SET_NULL)
    package_id: int  # the key columns, for the type checker
    carer_id: int | None
    weekdays = fields.CharField(max_length=7)  # ISO weekday digits: "12345" is Monday to Friday
    start = fields.IntField()  # minutes after midnight on the package's clock
    length = fields.IntField()  # minutes
    is_active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "care_rota"


class RotaPlan(Model):
    """The weekdays a rota entry runs on from a package-local day on (its history, for the figures).

    Written when a visit goes on the rota, when its weekdays change and when it is removed (no
    weekdays). A change applies to its whole day: the day's last row counts."""

    id = fields.IntField(primary_key=True)
    entry: fields.ForeignKeyRelation[RotaEntry] = fields.ForeignKeyField(
        "caretrack.RotaEntry", related_name="plans", on_delete=fields.CASCADE)
    entry_id: int  # the key column, for the type checker
    effective_on = fields.DateField()  # the package's date
    weekdays = fields.CharField(max_length=7)  # ISO weekday digits; "" once removed

    class Meta:
        table = "care_rota_plans"
        indexes = (("entry_id", "effective_on"),)


class Visit(Model):
    """A visit checked in to: one row per rota entry and date, written at check-in, completed at check-out.

    Locations are PHI (where the client lives): sealed ("care_visits.in_location") as "lat,lon"."""

    id = fields.IntField(primary_key=True)
    entry: fields.ForeignKeyRelation[RotaEntry] = fields.ForeignKeyField(
        "caretrack.RotaEntry", related_name="visits", on_delete=fields.RESTRICT)
    on_date = fields.DateField()  # the package's date of the visit
    carer: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "caretrack.User", related_name="visits", on_delete=fields.RESTRICT)
    entry_id: int  # the key columns, for the type checker
    carer_id: int
    starts_at = fields.DatetimeField()  # as the rota planned it when the carer checked in
    length = fields.IntField()
    checked_in_at = fields.DatetimeField()
    in_location = fields.TextField(null=True)
    in_accuracy = fields.FloatField(null=True)  # metres, as the phone reported it
    checked_out_at = fields.DatetimeField(null=True)
    out_location = fields.TextField(null=True)
    out_accuracy = fields.FloatField(null=True)

    class Meta:
        table = "care_visits"
        unique_together = (("entry", "on_date"),)
