"""The carer dashboard's "last" badge: each task's newest uncorrected completion by when it
happened, read for all tasks at once; on SQLite and PostgreSQL."""

from datetime import date, datetime, time, timedelta, timezone

from caretrack.accounts.models import Role
from caretrack.care import service as care
from tests.care.helpers import admin_user, package_with_task
from tests.helpers import make_user


async def test_latest_status_per_task_follows_occurrence_time_and_corrections(database):
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org")
    _, fluids = await package_with_task(admin, cara, title="Fluid chart")
    _, meds = await package_with_task(admin, cara, title="Medication prompt")
    _, shopping = await package_with_task(admin, cara, title="Shopping")
    morning = datetime.combine(date.today(), time(8, 0), tzinfo=timezone.utc)

    await care.do_log_completion(cara, fluids.id, key="fluids-key-1", occurred_at=morning + timedelta(hours=2))
    # logged afterwards, but it happened earlier: the 10:00 completion stays the latest
    await care.do_log_completion(cara, fluids.id, key="fluids-key-2", status="not_done", reason="Client declined",
                                 occurred_at=morning)
    done, _ = await care.do_log_completion(cara, meds.id, key="meds-key-1", occurred_at=morning)
    await care.do_correct_completion(cara, done.id, key="meds-fix-key", status="not_done", reason="Client declined")

    statuses = await care.latest_statuses([fluids.id, meds.id, shopping.id])
    assert statuses == {fluids.id: "done", meds.id: "not_done"}
    day = await care.carer_today(cara, None, at=morning + timedelta(hours=3))
    assert {p.task.id: (p.done, p.last_status) for p in day.tasks} == {
        fluids.id: (1, "done"), meds.id: (0, "not_done"), shopping.id: (0, None)}
