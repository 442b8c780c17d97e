"""The nudge, with the clock pinned: a message still unread at sent + the delay emails its
recipient once (no message text, no sender, a link to the thread); a message read by then is
skipped; a run before the due time does nothing; none is ever sent twice."""

from __future__ import annotations

from datetime import timedelta

import pytest

from caretrack.core.queue import Runner
from caretrack.core.queue.models import Job
from caretrack.core.queue.registry import HANDLERS
from caretrack.core.roles import Role
from caretrack.mail.models import OutboundEmail
from caretrack.messaging import jobs as messaging_jobs  # noqa: F401  (registers the nudge)
from caretrack.messaging import service
from caretrack.messaging.schemas import MessageIn, ThreadStart
from caretrack.messaging.service.nudge import NUDGE, nudge_key
from tests.messaging.conftest import T0, booked, person

SECRET = "The biopsy came back and we should talk"


def nudge_runner(settings) -> Runner:
    return Runner("test", settings, handlers={NUDGE: HANDLERS[NUDGE]})


async def nudges() -> list[OutboundEmail]:
    return await OutboundEmail.filter(subject="You have an unread message on CareTrack").order_by("id")


@pytest.fixture
async def pair(database):
    patient, doctor = await person(Role.PATIENT, "Pat Patient"), await person(Role.DOCTOR, "Dr Dana")
    await booked(patient, doctor)
    thread = await service.do_start_thread(doctor, ThreadStart(with_user_id=patient.id), at=T0)
    return patient, doctor, thread


async def test_an_unread_message_nudges_its_recipient_once_at_the_due_time(database, pair):
    patient, doctor, thread = pair
    message = await service.do_send(database, doctor, thread.id, MessageIn(text=SECRET), at=T0)
    [job] = await Job.filter(kind=NUDGE)
    assert (job.key, job.due_at) == (nudge_key(message.id), T0 + timedelta(hours=1))
    runner = nudge_runner(database)
    assert await runner.run_due(at=T0 + timedelta(minutes=59, seconds=59)) == 0
    assert await nudges() == []
    assert await runner.run_due(at=T0 + timedelta(hours=1)) == 1
    [email] = await nudges()
    assert email.to_address == patient.email
    assert f"{database.base_url}/messages/{thread.id}" in email.text_body
    for part in (email.subject, email.text_body, email.html_body):
        assert "biopsy" not in part and "Dr Dana" not in part
    assert (await Job.get(id=job.id)).status == "done"
    assert await runner.run_due(at=T0 + timedelta(days=2)) == 0  # never twice
    assert len(await nudges()) == 1


async def test_a_message_read_before_the_due_time_is_skipped(database, pair):
    patient, doctor, thread = pair
    await service.do_send(database, doctor, thread.id, MessageIn(text=SECRET), at=T0)
    await service.read_thread(patient, thread.id, at=T0 + timedelta(minutes=30))
    assert await nudge_runner(database).run_due(at=T0 + timedelta(hours=1)) == 1
    assert await nudges() == []
    [job] = await Job.filter(kind=NUDGE)
    assert job.status == "skipped"
    assert "read at" in (job.last_error or "")


async def test_each_message_has_its_own_nudge_and_the_delay_is_a_setting(database, pair):
    patient, doctor, thread = pair
    settings = database.replace(message_nudge_minutes=15)
    first = await service.do_send(settings, patient, thread.id, MessageIn(text="one"), at=T0)
    await service.do_send(settings, patient, thread.id, MessageIn(text="two"), at=T0 + timedelta(minutes=5))
    runner = nudge_runner(settings)
    assert await runner.run_due(at=T0 + timedelta(minutes=15)) == 1
    assert [e.to_address for e in await nudges()] == [doctor.email]
    assert (await Job.get(key=nudge_key(first.id))).status == "done"
    await service.read_thread(doctor, thread.id, at=T0 + timedelta(minutes=16))
    assert await runner.run_due(at=T0 + timedelta(minutes=20)) == 1  # the second: read by then
    assert len(await nudges()) == 1


async def test_a_message_to_the_office_nudges_every_active_admin(database):
    carer = await person(Role.CARER, "Cara Carer")
    admins = [await person(Role.ADMIN, "Ada Admin"), await person(Role.ADMIN, "Bo Admin")]
    await person(Role.ADMIN, "Gone Admin", is_active=False)
    thread = await service.do_start_thread(carer, ThreadStart(), at=T0)
    await service.do_send(database, carer, thread.id, MessageIn(text="Client fell this morning"), at=T0)
    assert await nudge_runner(database).run_due(at=T0 + timedelta(hours=2)) == 1
    assert sorted(e.to_address for e in await nudges()) == sorted(a.email for a in admins)
