"""Reminders before each consultation, for its patient and its doctor: one job per person and
offset (caretrack.core.queue), planned in the booking's transaction, moved with a reschedule
and cancelled with a cancellation or an outcome. The job checks again when it runs: a reminder
for an appointment that is no longer booked at that time is skipped, as is one that could not
go out within the grace period after its moment (the platform was down); one that is sent is
marked done in the transaction that queues its email, so it is never sent twice."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from caretrack.accounts.models import User
from caretrack.booking.calendar import appointment_ics
from caretrack.booking.models import Appointment, AppointmentStatus, ReminderPolicy
from caretrack.booking.schemas import ReminderPolicyIn
from caretrack.booking.service.common import utc
from caretrack.booking.zones import working_zone
from caretrack.core import timetext
from caretrack.core.audit.service import Actor
from caretrack.core.queue import JobContext, Skipped
from caretrack.core.transaction import Tx, atomic
from caretrack.notifications.schemas import Kind
from caretrack.notifications.service import notify

REMIND = "booking.remind"
REPLAN = "booking.replan_reminders"
POLICY_ID = 1


def _key(appointment_id: int) -> str:
    return f"reminder:{appointment_id}:"


async def current_policy(tx: Tx | None = None, *, lock: str | None = None) -> ReminderPolicy:
    """The admins' policy, or the default (a day and an hour before; 15 minutes' grace).
    `lock` ("share" or "update", PostgreSQL) holds its row to the end of `tx`: a booking that
    plans with the policy shares it, and a change waits for those bookings to commit, so the
    re-plan that follows the change sees every one of them (migration 0010 seeds the row)."""
    if tx is not None and lock is not None and tx.conn.capabilities.dialect == "postgres":
        clause = "FOR SHARE" if lock == "share" else "FOR UPDATE"
        await tx.conn.execute_query(f"SELECT 1 FROM reminder_policy WHERE id = $1 {clause}", [POLICY_ID])
    query = ReminderPolicy.filter(id=POLICY_ID)
    policy = await (query.using_db(tx.conn) if tx else query).first()
    return policy or ReminderPolicy(id=POLICY_ID)


async def plan(tx: Tx, appointment: Appointment, *, at: datetime) -> int:
    """Queue the reminders of a booked appointment; a reminder whose moment has already passed
    (booked within the hour for a one-hour reminder) is not sent: the confirmation is."""
    policy, starts, planned = await current_policy(tx, lock="share"), utc(appointment.starts_at), 0
    for offset in policy.offsets:
        moment = starts - timedelta(minutes=offset)
        if moment <= at:
            continue
        for user_id in (appointment.patient_id, appointment.doctor_id):
            await tx.defer(REMIND, {"appointment_id": appointment.id, "user_id": user_id, "offset": offset,
                                    "starts_at": starts.isoformat()},
                           due=moment, key=f"{_key(appointment.id)}{user_id}:{offset}")
            planned += 1
    return planned


async def unplan(tx: Tx, appointment_id: int, *, at: datetime) -> int:
    return await tx.cancel_jobs(_key(appointment_id), at=at)


async def replan(tx: Tx, appointment: Appointment, *, at: datetime) -> int:
    """Cancel and plan again, holding the appointment's row: two re-plans of one booking (two
    policy saves, or one racing a reschedule) run one after the other, each seeing what the
    other committed, so one set of reminders is left, for the time the booking has now."""
    current = await Appointment.filter(id=appointment.id).using_db(tx.conn).select_for_update().first()
    await unplan(tx, appointment.id, at=at)
    if current is None or current.status != AppointmentStatus.BOOKED:
        return 0
    return await plan(tx, current, at=at)


async def do_set_policy(actor: Actor, command: ReminderPolicyIn, *, at: datetime) -> ReminderPolicy:
    """Save the policy and re-plan the reminders of every upcoming booking (as a job)."""
    async with atomic() as tx:
        policy = await current_policy(tx, lock="update")
        previous = {"offsets": list(policy.offsets), "grace_minutes": policy.grace_minutes}
        policy.offsets, policy.grace_minutes = command.offsets, command.grace_minutes
        policy.updated_at, policy.updated_by_id = at, actor.user_id
        await policy.save(using_db=tx.conn)
        await tx.audit(actor, "reminders.policy_changed", "reminder_policy", POLICY_ID, previous=previous,
                       offsets=command.offsets, grace_minutes=command.grace_minutes)
        await tx.defer(REPLAN, {}, key="reminders:replan")
    return policy


async def replan_upcoming(ctx: JobContext) -> None:
    """The `booking.replan_reminders` job: every upcoming booking's reminders, from the policy now."""
    ids = await Appointment.filter(status=AppointmentStatus.BOOKED, starts_at__gt=ctx.at).values_list("id", flat=True)
    for appointment_id in ids:
        async with atomic() as tx:
            appointment = await Appointment.filter(id=appointment_id, status=AppointmentStatus.BOOKED) \
                .using_db(tx.conn).first()
            if appointment is not None:
                await replan(tx, appointment, at=ctx.at)


async def send_reminder(ctx: JobContext) -> None:
    """The `booking.remind` job: one reminder to one person, or a reason it is skipped. The
    appointment is read locked in the sending transaction, so a cancel or a move either
    commits first (and the reminder is skipped) or waits until the reminder is queued."""
    payload = ctx.payload
    async with atomic() as tx:
        appointment = await Appointment.filter(id=payload["appointment_id"]).using_db(tx.conn) \
            .select_for_update().first()
        if appointment is None or appointment.status != AppointmentStatus.BOOKED:
            raise Skipped(f"the appointment is {appointment.status if appointment else 'gone'}")
        starts = utc(appointment.starts_at)
        if starts.isoformat() != payload["starts_at"]:
            raise Skipped("the appointment has moved; its new reminders are planned")
        moment = starts - timedelta(minutes=payload["offset"])
        grace = timedelta(minutes=(await current_policy(tx)).grace_minutes)
        if ctx.at > moment + grace or ctx.at >= starts:
            raise Skipped(f"{ctx.at - moment} late, past the {grace} grace: not sent late")
        doctor = await User.filter(id=appointment.doctor_id).using_db(tx.conn).get()
        patient = await User.filter(id=appointment.patient_id).using_db(tx.conn).get()
        person, other = (doctor, patient) if payload["user_id"] == doctor.id else (patient, doctor)
        if person.id != payload["user_id"] or not person.is_active:
            raise Skipped("the recipient is no longer on this appointment or is deactivated")
        settings, zone = ctx.settings, await working_zone(person, tx.conn)
        await _send(tx, person, {
            "name": person.full_name, "other": other.full_name, "when": timetext.show(starts, zone),
            "in": _lead(payload["offset"]), "minutes": int((appointment.ends_at - appointment.starts_at)
                                                           .total_seconds() // 60),
            "link": f"{settings.base_url}/appointments/{appointment.id}",
        }, [(f"appointment-{appointment.id}.ics", "text/calendar",
             appointment_ics(appointment, doctor, patient, settings, cancelled=False))], at=ctx.at, starts=starts,
            zone=zone)
        await ctx.finish(tx)


async def _send(tx: Tx, person: User, context: dict[str, Any], attachments: list[tuple[str, str, bytes]],
                *, at: datetime, starts: datetime, zone: str) -> None:
    """On the channels the person chose; the text names only the time and the link."""
    await notify(tx, person, Kind.APPOINTMENT_REMINDER, at=at,
                 email=("booking_reminder", context, attachments),
                 sms_text=f"CareTrack: your video consultation is at {timetext.show(starts, zone, 'at')}. "
                          f"Join: {context['link']}")


def _lead(offset: int) -> str:
    """'in 1 day', 'in 1 hour', 'in 90 minutes'."""
    for unit, minutes in (("day", 1440), ("hour", 60)):
        if offset % minutes == 0:
            count = offset // minutes
            return f"in {count} {unit}{'s' if count != 1 else ''}"
    return f"in {offset} minutes"
