"""Follow-up offers: after (or during) a consultation the doctor offers the patient a next
one, one of their free slots or any free slot in a date range; the patient books it in one
step through the normal booking path (`do_book`: the same checks, the same credits).

An offer is not a hold: nothing is blocked, so a slot booked by someone else meanwhile is
refused when the patient accepts, with a message that says so. An offer expires after
OFFER_LIFETIME, or earlier when its last slot can no longer be booked. Accepting books with
the idempotency key `follow-up-<id>`, so a retried or doubled accept charges once.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from caretrack.accounts.models import User
from caretrack.booking import slots as slotlib
from caretrack.booking.followup_models import FollowUpOffer
from caretrack.booking.followup_schemas import FollowUpBook, FollowUpCreate, FollowUpOut, FollowUpSlotOut, OfferState
from caretrack.booking.models import Appointment, AppointmentStatus, DoctorProfile
from caretrack.booking.schemas import BookSlot
from caretrack.booking.service import SlotTaken, do_book, list_slots, rules_for
from caretrack.booking.service.common import utc
from caretrack.booking.status import status_label
from caretrack.core import timetext
from caretrack.core.audit.service import Actor
from caretrack.core.errors import CareTrackError, Conflict, Forbidden, NotFound, ValidationError
from caretrack.core.settings import Settings
from caretrack.core.transaction import atomic
from caretrack.intake import service as intake
from caretrack.notifications.schemas import Kind
from caretrack.notifications.service import notify

OFFER_LIFETIME = timedelta(days=14)
MAX_RANGE_DAYS = 31
MAX_SLOTS = 200  # the most times a list shows (a select on the page)
# A follow-up follows a consultation that stands or took place.
OFFERABLE = frozenset({AppointmentStatus.BOOKED, AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW})


class OfferExpired(Conflict):
    code = "offer_expired"


def key_for(offer: FollowUpOffer) -> str:
    return f"follow-up-{offer.id}"


async def _doctors_appointment(user: User, appointment_id: int) -> Appointment:
    appointment = await Appointment.get_or_none(id=appointment_id)
    if appointment is None or user.id not in (appointment.doctor_id, appointment.patient_id):
        raise NotFound(f"No appointment with id {appointment_id}.")
    if user.id != appointment.doctor_id:
        raise Forbidden("Only the appointment's doctor offers a follow-up.")
    if appointment.status not in OFFERABLE:
        raise ValidationError(f"This appointment is {appointment.status}; a follow-up follows a consultation "
                              "that stands or took place.")
    return appointment


async def _free(doctor_id: int, first: date, last: date, *, at: datetime, after: datetime) -> list[slotlib.Slot]:
    """The doctor's free, bookable slots on local dates first..last, starting at or after `after`."""
    days = (last - first).days + 1
    slots = await list_slots(doctor_id, at=at, start_day=first, days=days, limit=MAX_SLOTS * 2)
    return [s for s in slots if s.starts_at >= after]


async def offerable_slots(user: User, appointment_id: int, *, at: datetime,
                          days: int = 28) -> tuple[str, list[slotlib.Slot]]:
    """(the doctor's zone, their free slots after this consultation) for the offer form."""
    appointment = await _doctors_appointment(user, appointment_id)
    _, rules = await rules_for(appointment.doctor_id)
    first = max(at, utc(appointment.ends_at)).astimezone(rules.zone).date()
    slots = await _free(appointment.doctor_id, first, first + timedelta(days=days - 1), at=at,
                        after=utc(appointment.ends_at))
    return rules.time_zone, slots[:MAX_SLOTS]


async def do_offer(settings: Settings, doctor: User, appointment_id: int, command: FollowUpCreate, *,
                   at: datetime, client_address: str | None = None) -> FollowUpOffer:
    appointment = await _doctors_appointment(doctor, appointment_id)
    _, rules = await rules_for(appointment.doctor_id)
    tz, ends = rules.zone, utc(appointment.ends_at)
    notice = timedelta(minutes=rules.min_notice_minutes)
    today = at.astimezone(tz).date()
    horizon = (at + timedelta(days=rules.horizon_days)).astimezone(tz).date()
    values: dict[str, Any] = {}
    if command.starts_at is not None:
        starts = utc(command.starts_at)
        if starts < ends:
            raise ValidationError("A follow-up starts after this consultation ends; choose a later time.")
        outside = ValidationError(f"Choose a time from today to {horizon:%d %B %Y}, within your booking horizon.")
        if starts > at + timedelta(days=rules.horizon_days + 1):  # checked first: a far instant has no local date
            raise outside
        day = starts.astimezone(tz).date()
        if not today <= day <= horizon:
            raise outside
        if not any(s.starts_at == starts for s in await _free(appointment.doctor_id, day, day, at=at, after=ends)):
            raise SlotTaken(f"{timetext.show(starts, rules.time_zone)} is not one of your free slots (it is taken, "
                            "too soon, or outside your hours); choose one from the list.")
        values["starts_at"], latest = starts, starts - notice
    else:
        first, last = command.from_date, command.until_date
        assert first is not None and last is not None  # the command's validator
        if first < today:
            raise ValidationError("The dates start in the past; start them today or later.",
                                  fields=[{"field": "from_date", "message": "in the past"}])
        if first > horizon:
            raise ValidationError(f"You take bookings at most {rules.horizon_days} days ahead; start the dates "
                                  f"by {horizon:%d %B %Y}.", fields=[{"field": "from_date", "message": "too far"}])
        if last < first:
            raise ValidationError("The last date is before the first.",
                                  fields=[{"field": "until_date", "message": "before from_date"}])
        if (last - first).days >= MAX_RANGE_DAYS:
            raise ValidationError(f"Offer at most {MAX_RANGE_DAYS} days.",
                                  fields=[{"field": "until_date", "message": "too long"}])
        if not await _free(appointment.doctor_id, first, last, at=at, after=ends):
            raise ValidationError(f"You have no free time from {first:%d %B} to {last:%d %B %Y}; choose other "
                                  "dates or publish more hours.")
        values["range_from"] = slotlib.local_instant(first, time(0), tz)
        values["range_until"] = slotlib.local_instant(last, None, tz)
        latest = values["range_until"] - notice
    async with atomic() as tx:
        offer = await FollowUpOffer.create(using_db=tx.conn, appointment_id=appointment.id, doctor_id=doctor.id,
                                           patient_id=appointment.patient_id, time_zone=rules.time_zone,
                                           created_at=at, expires_at=min(at + OFFER_LIFETIME, latest), **values)
        await tx.audit(Actor(doctor.id, client_address), "booking.follow_up_offered", "appointment", appointment.id,
                       offer=offer.id)
        await tx.emit("booking.follow_up_offered", actor_id=doctor.id, subject=("appointment", appointment.id),
                      data={"offer_id": offer.id, "appointment_id": appointment.id,
                            "expires_at": offer.expires_at.isoformat()},
                      users=[appointment.patient_id, appointment.doctor_id])
        patient = await User.filter(id=appointment.patient_id).using_db(tx.conn).get()
        if patient.is_active:
            link = f"{settings.base_url}/follow-ups/{offer.id}"
            await notify(tx, patient, Kind.VISIT_FOLLOW_UP, at=at, email=("follow_up_offered", {
                "name": patient.full_name, "when": timetext.show(appointment.starts_at, patient.time_zone),
                "offer": describe(offer, patient.time_zone), "link": link,
                "expires": timetext.show(offer.expires_at, patient.time_zone)}, ()),
                sms_text=f"CareTrack: your doctor offers you a follow-up consultation. See it: {link}")
    return offer


def describe(offer: FollowUpOffer, time_zone: str) -> str:
    if offer.starts_at is not None:
        return timetext.show(offer.starts_at, time_zone)
    assert offer.range_from is not None and offer.range_until is not None
    zone = slotlib.zone(offer.time_zone)
    first = offer.range_from.astimezone(zone).date()
    last = (offer.range_until.astimezone(zone) - timedelta(seconds=1)).date()
    return f"any free time from {first:%A %d %B} to {last:%A %d %B %Y} ({offer.time_zone})"


def state_of(offer: FollowUpOffer, at: datetime) -> OfferState:
    if offer.booked_id is not None:
        return "booked"
    return "expired" if offer.expires_at <= at else "open"


async def get_offer(user: User, offer_id: int) -> FollowUpOffer:
    """The offer, for its patient and its doctor; 404 for anyone else."""
    offer = await FollowUpOffer.get_or_none(id=offer_id).prefetch_related("doctor", "patient")
    if offer is None or user.id not in (offer.doctor_id, offer.patient_id):
        raise NotFound(f"No follow-up offer with id {offer_id}.")
    return offer


async def slots_of(offer: FollowUpOffer, at: datetime) -> list[slotlib.Slot]:
    """The free slots the offer can be booked at now (none once it is booked or expired)."""
    if state_of(offer, at) != "open":
        return []
    zone = slotlib.zone(offer.time_zone)
    try:
        if offer.starts_at is not None:
            day = offer.starts_at.astimezone(zone).date()
            return [s for s in await _free(offer.doctor_id, day, day, at=at, after=offer.starts_at)
                    if s.starts_at == utc(offer.starts_at)]
        assert offer.range_from is not None and offer.range_until is not None
        first = max(at, offer.range_from).astimezone(zone).date()
        last = (offer.range_until.astimezone(zone) - timedelta(seconds=1)).date()
        if last < first:
            return []
        slots = await _free(offer.doctor_id, first, last, at=at, after=offer.range_from)
    except NotFound:  # the doctor is no longer bookable
        return []
    return [s for s in slots if s.starts_at < offer.range_until][:MAX_SLOTS]


async def view(offer: FollowUpOffer, reader: User, at: datetime) -> FollowUpOut:
    await offer.fetch_related("doctor", "patient")
    zone = offer.time_zone if reader.id == offer.doctor_id else reader.time_zone
    profile = await DoctorProfile.get_or_none(user_id=offer.doctor_id)
    return FollowUpOut(
        id=offer.id, appointment_id=offer.appointment_id, doctor_id=offer.doctor_id,
        doctor_name=offer.doctor.full_name, patient_id=offer.patient_id, patient_name=offer.patient.full_name,
        kind="slot" if offer.starts_at is not None else "range", starts_at=offer.starts_at,
        range_from=offer.range_from, range_until=offer.range_until, description=describe(offer, zone),
        expires_at=offer.expires_at, state=state_of(offer, at), booked_appointment_id=offer.booked_id,
        fee_credits=profile.fee_credits if profile else 0,
        slots=[slot_out(s, zone) for s in await slots_of(offer, at)])


def slot_out(slot: slotlib.Slot, time_zone: str) -> FollowUpSlotOut:
    return FollowUpSlotOut(starts_at=slot.starts_at, ends_at=slot.ends_at, label=timetext.show(slot.starts_at,
                                                                                              time_zone))


async def offers_for(user: User, appointment: Appointment) -> list[FollowUpOffer]:
    if user.id not in (appointment.doctor_id, appointment.patient_id):
        return []
    return await FollowUpOffer.filter(appointment_id=appointment.id).order_by("-id")


async def do_accept(settings: Settings, patient: User, offer_id: int, command: FollowUpBook, *, at: datetime,
                    client_address: str | None = None) -> Appointment:
    """Book the offer (paid in credits by `do_book`); the booking once made is returned again."""
    offer = await get_offer(patient, offer_id)
    if patient.id != offer.patient_id:
        raise Forbidden("Only the patient books the follow-up their doctor offered.")
    if offer.booked_id is not None:
        booked = await Appointment.get_or_none(id=offer.booked_id)
        if booked is not None:
            return booked
    if offer.expires_at <= at:
        raise OfferExpired(f"This follow-up offer expired on {timetext.show(offer.expires_at, patient.time_zone)}; "
                           f"choose a time on the doctor's page (/doctors/{offer.doctor_id}) or message them.")
    followed = await Appointment.get(id=offer.appointment_id)
    if followed.status not in OFFERABLE:  # cancelled (and refunded) since the offer was made
        raise OfferExpired(f"This follow-up offer was withdrawn: the consultation it followed is now "
                           f"“{status_label(followed)}”. Choose a time on the doctor's page "
                           f"(/doctors/{offer.doctor_id}) or message them.")
    kind = command.consultation_type_id
    if kind is None and followed.consultation_type_id in {t.id for t in await intake.offered_types(offer.doctor_id)}:
        kind = followed.consultation_type_id
    if offer.starts_at is not None:
        starts = utc(offer.starts_at)
        if command.starts_at is not None and utc(command.starts_at) != starts:
            raise ValidationError("This offer is for one time only; book that time or choose another on the "
                                  "doctor's page.")
    else:
        if command.starts_at is None:
            raise ValidationError("Choose one of the offered times.",
                                  fields=[{"field": "starts_at", "message": "missing"}])
        starts = utc(command.starts_at)
        assert offer.range_from is not None and offer.range_until is not None
        if not utc(offer.range_from) <= starts < utc(offer.range_until):
            raise ValidationError(f"{starts.isoformat()} is outside the offered dates; choose one of the offered "
                                  "times.")
    try:
        appointment = await do_book(settings, patient, BookSlot(doctor_id=offer.doctor_id, starts_at=starts,
                                                                     consultation_type_id=kind),
                                    idempotency_key=key_for(offer), at=at, client_address=client_address)
    except SlotTaken:
        taken = timetext.show(starts, patient.time_zone)
        if offer.starts_at is not None:
            raise SlotTaken(f"{taken}, the time your doctor offered, has been taken since; choose another time on "
                            f"the doctor's page (/doctors/{offer.doctor_id}) or message them.") from None
        raise SlotTaken(f"{taken} has just been taken; choose another of the offered times.") from None
    except CareTrackError as exc:
        if exc.code != "idempotency_mismatch":
            raise
        # A concurrent accept of this offer booked another of its times first: that booking stands.
        appointment = await Appointment.get(patient_id=patient.id, idempotency_key=key_for(offer))
    async with atomic() as tx:
        claimed = await FollowUpOffer.filter(id=offer.id, booked_id=None).using_db(tx.conn).update(
            booked_id=appointment.id, booked_at=at)
        if claimed:
            await tx.audit(Actor(patient.id, client_address), "booking.follow_up_booked", "appointment",
                           offer.appointment_id, offer=offer.id, booked=appointment.id)
            await tx.emit("booking.follow_up_booked", actor_id=patient.id,
                          subject=("appointment", offer.appointment_id),
                          data={"offer_id": offer.id, "appointment_id": offer.appointment_id,
                                "booked_appointment_id": appointment.id},
                          users=[offer.patient_id, offer.doctor_id])
    return appointment


async def panel(user: User, appointment: Appointment, at: datetime) -> dict[str, Any]:
    """What the appointment page shows of follow-ups: the offers made from it, and for its
    doctor the free slots to offer."""
    if user.id not in (appointment.doctor_id, appointment.patient_id) or appointment.status not in OFFERABLE:
        return {}
    context: dict[str, Any] = {"follow_ups": [await view(o, user, at) for o in await offers_for(user, appointment)],
                               "when": timetext.show}
    if user.id == appointment.doctor_id:
        try:
            zone, slots = await offerable_slots(user, appointment.id, at=at)
            context["follow_up_zone"], context["follow_up_slots"] = zone, [slot_out(s, zone) for s in slots]
        except NotFound:  # no published hours, or not bookable now
            context["follow_up_zone"], context["follow_up_slots"] = None, []
    return context
