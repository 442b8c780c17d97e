"""The carer dashboard's "last" badge: each task's newest uncorrected completion by when it
happened, read for all tasks at once; on SQLite and PostgreSQL."""

from caretrack.care import service as care
from caretrack.care.schemas import CompletionIn
from caretrack.care.service import day_start
from caretrack.core.roles import Role
from tests.care.helpers import admin_user, package_with_task
from tests.helpers import make_user


async def test_latest_status_per_task_follows_occurrence_time_and_corrections(database, now):
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org")
    _, fluids = await package_with_task(admin, cara, title="Fluid chart")
    _, meds = await package_with_task(admin, cara, title="Medication prompt")
    _, shopping = await package_with_task(admin, cara, title="Shopping")
    # two moments earlier today, however early in the day `now` is
    earlier = day_start(now.date()) + (now - day_start(now.date())) / 3
    later = day_start(now.date()) + (now - day_start(now.date())) * 2 / 3

    await care.do_log_completion(
        cara, fluids.id, CompletionIn(idempotency_key="fluids-key-1", occurred_at=later), at=now)
    # logged afterwards, but it happened earlier: the later completion stays the latest
    await care.do_log_completion(
        cara, fluids.id, CompletionIn(idempotency_key="fluids-key-2", status="not_done", reason="Client declined",
                                      occurred_at=earlier), at=now)
    done, _ = await care.do_log_completion(
        cara, meds.id, CompletionIn(idempotency_key="meds-key-1", occurred_at=earlier), at=now)
    await care.do_correct_completion(
        cara, done.id, CompletionIn(idempotency_key="meds-fix-key", status="not_done", reason="Client declined"),
        at=now)

    statuses = await care.latest_statuses([fluids.id, meds.id, shopping.id])
    assert statuses == {fluids.id: "done", meds.id: "not_done"}
    day = await care.carer_today(cara, None, at=now)
    assert {p.task.id: (p.done, p.last_status) for p in day.tasks} == {
        fluids.id: (1, "done"), meds.id: (0, "not_done"), shopping.id: (0, None)}
