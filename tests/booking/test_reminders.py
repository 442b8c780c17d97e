"""Reminders before consultations, with the clock pinned: planned at booking, moved by a
reschedule, gone with a cancel, skipped past the grace (never late), never sent twice."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from caretrack.booking import jobs as booking_jobs  # noqa: F401  (registers the reminder jobs)
from caretrack.booking import service
from caretrack.booking.schemas import BookSlot, CancelRequest, OutcomeRequest, ReminderPolicyIn, RescheduleRequest
from caretrack.booking.service import reminders
from caretrack.core.audit.service import Actor
from caretrack.core.queue import Runner
from caretrack.core.queue.models import Job
from caretrack.core.queue.registry import HANDLERS
from caretrack.mail.models import OutboundEmail
from tests.booking.conftest import make_doctor, make_patient, next_hour


def reminder_runner(settings, name: str = "test") -> Runner:
    kinds = (reminders.REMIND, reminders.REPLAN)
    return Runner(name, settings, handlers={kind: HANDLERS[kind] for kind in kinds})


async def booked(settings, now, hours: int = 48, patient_zone: str = "Europe/London",
                 doctor_zone: str = "America/New_York"):
    doctor = await make_doctor(time_zone=doctor_zone)
    patient = await make_patient(credits=100, time_zone=patient_zone)
    start = next_hour(hours, now)
    appointment = await service.do_book(settings, patient, BookSlot(doctor_id=doctor.id, starts_at=start), at=now)
    return appointment, doctor, patient, start


async def reminder_emails() -> list[OutboundEmail]:
    return await OutboundEmail.filter(subject__startswith="Reminder").order_by("id")


async def test_a_booking_plans_a_reminder_a_day_and_an_hour_before_for_each_person(database, now):
    appointment, doctor, patient, start = await booked(database, now)
    jobs = await Job.filter(kind=reminders.REMIND, status="queued").order_by("due_at", "key")
    assert sorted((j.due_at, json.loads(j.payload)["user_id"]) for j in jobs) == sorted(
        (start - timedelta(minutes=m), who.id) for m in (1440, 60) for who in (patient, doctor))
    runner = reminder_runner(database)
    assert await runner.run_due(at=start - timedelta(hours=24, seconds=1)) == 0
    assert await runner.run_due(at=start - timedelta(hours=24)) == 2
    emails = {e.to_address: e for e in await reminder_emails()}
    assert set(emails) == {patient.email, doctor.email}
    for person, zone in ((patient, "Europe/London"), (doctor, "America/New_York")):
        local = start.astimezone(ZoneInfo(zone))
        email = emails[person.email]
        said = f"{local:%A}, {local.day} {local:%B %Y, %H:%M} ({zone})"  # the reader's zone, named
        assert said in email.subject and said in email.text_body
        assert "starts in 1 day" in email.text_body
        assert f"/appointments/{appointment.id}" in email.text_body
        [ics] = json.loads(email.attachments)
        assert ics["filename"] == f"appointment-{appointment.id}.ics" and ics["content_type"] == "text/calendar"
    assert await runner.run_due(at=start - timedelta(hours=23)) == 0
    assert await runner.run_due(at=start - timedelta(hours=1)) == 2
    assert len(await reminder_emails()) == 4
    assert await runner.run_due(at=start + timedelta(days=3)) == 0  # none is ever sent twice


async def test_a_reschedule_moves_the_reminders_and_a_cancel_removes_them(database, now):
    appointment, doctor, patient, start = await booked(database, now)
    new_start = start + timedelta(hours=5)
    await service.do_reschedule(database, patient, appointment.id, RescheduleRequest(starts_at=new_start), at=now)
    runner = reminder_runner(database)
    assert await runner.run_due(at=start - timedelta(hours=24)) == 0  # the old moment: nothing
    assert await reminder_emails() == []
    assert await runner.run_due(at=new_start - timedelta(hours=24)) == 2
    [to_patient] = [e for e in await reminder_emails() if e.to_address == patient.email]
    assert f"{new_start.astimezone(ZoneInfo('Europe/London')):%H:%M}" in to_patient.subject

    await service.do_cancel(database, patient, appointment.id, CancelRequest(reason="better"), at=now)
    assert await Job.filter(kind=reminders.REMIND, status="queued").count() == 0
    assert await runner.run_due(at=new_start - timedelta(hours=1)) == 0
    assert len(await reminder_emails()) == 2


async def test_a_reminder_left_queued_for_a_moved_or_ended_appointment_is_skipped(database, now):
    """The job checks again when it runs, whatever happened to its queued siblings."""
    appointment, doctor, patient, start = await booked(database, now, hours=2)
    [hour_before, _] = await Job.filter(kind=reminders.REMIND).order_by("id")
    await service.do_record_outcome(database, doctor, appointment.id, OutcomeRequest(outcome="no_show"),
                                    at=start + timedelta(minutes=1))
    await Job.filter(id=hour_before.id).update(status="queued")  # as if the cancel had been missed
    assert await reminder_runner(database).run_due(at=start - timedelta(minutes=59)) == 1
    job = await Job.get(id=hour_before.id)
    assert (job.status, job.last_error) == ("skipped", "the appointment is no_show")


@pytest.mark.parametrize(("late", "sent"), [(timedelta(minutes=15), True), (timedelta(minutes=15, seconds=1), False)])
async def test_a_platform_down_across_the_moment_sends_within_the_grace_and_skips_after(database, now, late, sent):
    appointment, doctor, patient, start = await booked(database, now)
    moment = start - timedelta(hours=1)
    await Job.filter(kind=reminders.REMIND, due_at__lt=moment).update(status="cancelled")  # keep the hour's
    assert await reminder_runner(database).run_due(at=moment + late) == 2
    assert len(await reminder_emails()) == (2 if sent else 0)
    statuses = await Job.filter(kind=reminders.REMIND, due_at=moment).values_list("status", flat=True)
    assert statuses == ["done" if sent else "skipped"] * 2


async def test_two_runners_racing_send_each_reminder_once(database, now):
    appointment, doctor, patient, start = await booked(database, now)
    at = start - timedelta(hours=1)
    one, other = reminder_runner(database, "one"), reminder_runner(database, "other")
    await asyncio.gather(one.run_due(at=at), other.run_due(at=at), one.run_due(at=at))
    emails = await reminder_emails()
    assert sorted(e.to_address for e in emails) == sorted([patient.email, doctor.email])
    statuses = sorted(await Job.filter(kind=reminders.REMIND).values_list("status", flat=True))
    assert statuses == ["done", "done", "skipped", "skipped"]  # the day-before ones are 23 h late


async def test_a_booking_made_inside_a_reminders_window_gets_only_the_later_ones(database, now):
    appointment, doctor, patient, start = await booked(database, now, hours=3)
    offsets = {json.loads(j.payload)["offset"] for j in await Job.filter(kind=reminders.REMIND)}
    assert offsets == {60}  # the day-before reminder's moment had passed; the confirmation said it


async def test_the_admins_policy_replans_upcoming_bookings(database, now):
    appointment, doctor, patient, start = await booked(database, now)
    admin = await make_patient()  # any actor id will do for the audit row
    await reminders.do_set_policy(Actor(admin.id), ReminderPolicyIn(offsets=[30, 180], grace_minutes=5), at=now)
    assert await reminder_runner(database).run_due(at=now) == 1  # the re-plan job
    planned = await Job.filter(kind=reminders.REMIND, status="queued").values_list("due_at", flat=True)
    assert sorted(planned) == sorted([start - timedelta(minutes=180)] * 2 + [start - timedelta(minutes=30)] * 2)
    assert (await reminders.current_policy()).offsets == [180, 30]


@pytest.mark.parametrize(("offsets", "message"), [([2], "must be between 5 and 20160, not 2"),
                                                   ([60] * 5, "at most 4")])
def test_a_policy_out_of_bounds_is_refused_with_the_rule(offsets, message):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        ReminderPolicyIn(offsets=offsets)


async def test_re_plans_racing_on_postgresql_leave_one_set_of_reminders(pg_database_url, now):
    """Two re-plans of one booking in overlapping transactions (two policy saves, or one and a
    reschedule): the second waits for the first's row lock, then sees its reminders and
    replaces them, so each reminder is queued once, not once per re-plan."""
    from caretrack.core import db
    from caretrack.core.transaction import atomic
    from tests.conftest import base_settings

    settings = base_settings(database_url=pg_database_url)
    await db.start(settings)
    try:
        appointment, doctor, patient, start = await booked(settings, now)

        go = asyncio.Event()

        async def replan_alone() -> None:
            await go.wait()
            async with atomic() as tx:
                await reminders.replan(tx, appointment, at=now)

        # Started outside the first transaction: a task started inside would inherit it.
        second = asyncio.create_task(replan_alone())
        async with atomic() as first:
            await reminders.replan(first, appointment, at=now)
            go.set()
            for _ in range(500):  # until the second re-plan waits on the row lock
                _, rows = await first.conn.execute_query(  # live, unlike pg_stat_activity in a transaction
                    "SELECT count(*) AS n FROM pg_locks WHERE NOT granted")
                if rows[0]["n"]:
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("the second re-plan never waited for the first")
        await second
        keys = await Job.filter(kind=reminders.REMIND, status="queued").values_list("key", flat=True)
        assert sorted(keys) == sorted(f"reminder:{appointment.id}:{who.id}:{m}" for who in (patient, doctor)
                                      for m in (1440, 60))
    finally:
        await db.stop()


async def test_each_person_is_reminded_on_the_channels_they_chose(database, now):
    """The patient chose SMS (their text names a time and a link, never the doctor); the doctor
    opted out of reminders: nothing goes to them."""
    from caretrack.core import crypto
    from caretrack.notifications.models import NotificationPreference, OutboundSms
    from caretrack.notifications.sms import number_of

    appointment, doctor, patient, start = await booked(database, now)
    patient.phone = crypto.seal("+447911123456", "users.phone")
    await patient.save()
    for who, channel in ((patient, "sms"), (doctor, "none")):
        await NotificationPreference.create(user_id=who.id, kind="appointment_reminder", channel=channel,
                                            updated_at=now)
    assert await reminder_runner(database).run_due(at=start - timedelta(hours=1)) == 4  # the day's: too late
    assert await reminder_emails() == []
    [text] = await OutboundSms.all()
    local = start.astimezone(ZoneInfo("Europe/London"))
    assert number_of(text) == "+447911123456" and text.to_hint == "+44 ••• 3456"
    assert text.body == (f"CareTrack: your video consultation is at {local:%H:%M} (Europe/London), "
                         f"{local:%a} {local.day} {local:%b}. "
                         f"Join: http://testserver/appointments/{appointment.id}")
    assert doctor.full_name not in text.body and patient.full_name not in text.body
