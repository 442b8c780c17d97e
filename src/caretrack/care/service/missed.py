"""Missed tasks: a window that closed short of its target is recorded once and announced to
the admins and the carer. Run by the periodic job (caretrack.care.jobs)."""

from __future__ import annotations

from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError

from caretrack.care.models import CarePackage, CareTask, MissedTask, Period
from caretrack.care.service.progress import done_counts, expected_in
from caretrack.care.service.tasks import task_payload
from caretrack.core.clock import utcnow
from caretrack.core.roles import Role
from caretrack.core.transaction import atomic


async def check_missed(at: datetime | None = None) -> int:
    """Record (once) and announce every task whose window closed short of its target:
    today's closed windows and yesterday's, and last week's weekly targets."""
    at = at or utcnow()
    today = at.date()
    minutes = at.hour * 60 + at.minute
    found = 0
    tasks = await CareTask.filter(is_active=True).prefetch_related("package", "carer")
    for task in tasks:
        package: CarePackage = task.package
        if task.period == Period.WEEK:
            monday = today - timedelta(days=today.weekday())
            candidates = [(monday - timedelta(days=7), monday - timedelta(days=1))]
        else:
            candidates = [(today - timedelta(days=1),) * 2]
            if minutes >= task.window_end:
                candidates.append((today, today))
        for start, end in candidates:
            if start < task.created_at.date() and end < task.created_at.date():
                continue
            expected = expected_in(task, package, start, end)
            if expected == 0 or await MissedTask.exists(task_id=task.id, on_date=end):
                continue
            done = (await done_counts([task.id], start, end)).get(task.id, 0)
            if done >= expected:
                continue
            try:
                async with atomic() as tx:
                    await MissedTask.create(using_db=tx.conn, task_id=task.id, on_date=end, done=done, target=expected)
                    await tx.emit("task.missed", actor_id=None, subject=("care_task", task.id),
                                  data={**task_payload(task), "on_date": end.isoformat(), "done": done,
                                        "expected": expected, "carer_name": task.carer.full_name},
                                  roles=[Role.ADMIN], users=[task.carer_id])
            except IntegrityError:  # another process recorded it first
                continue
            found += 1
    return found
