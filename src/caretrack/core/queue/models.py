"""The job table: deferred work written in the caller's transaction and run by a runner
(in the web process by default, `caretrack worker` processes when scaled out)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

# queued → running → done | skipped | dead; queued → cancelled. A running job whose lease has
# run out (its worker died) is claimable again.
STATUSES = ("queued", "running", "done", "skipped", "dead", "cancelled")
FINISHED = ("done", "skipped", "dead", "cancelled")


class Job(Model):
    id = fields.BigIntField(primary_key=True)
    kind = fields.CharField(max_length=64)
    payload = fields.TextField(default="{}")  # JSON object
    # Callers name jobs they may cancel or move later ("reminder:12:"); not unique.
    key = fields.CharField(max_length=200, null=True, db_index=True)
    status = fields.CharField(max_length=16, default="queued")
    due_at = fields.DatetimeField(null=True)  # None: as soon as a runner is free
    attempts = fields.IntField(default=0)  # runs started, counted when claimed
    max_attempts = fields.IntField(default=10)
    lease_token = fields.CharField(max_length=32, null=True)  # who holds it now (one claim pass)
    lease_until = fields.DatetimeField(null=True)
    locked_by = fields.CharField(max_length=100, null=True)  # the runner's id, for admins
    last_error = fields.TextField(null=True)
    created_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "jobs"
        indexes = (("status", "due_at"),)


class JobSchedule(Model):
    """When a recurring job next falls due.

    Runners advance it with a compare-and-set, so one tick makes one job whatever the number
    of runners."""

    name = fields.CharField(max_length=64, primary_key=True)
    next_due = fields.DatetimeField()

    class Meta:
        table = "job_schedules"
