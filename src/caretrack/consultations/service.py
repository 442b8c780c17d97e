"""Consultations: who may join which call and when, and what the call leaves behind (chat,
notes, recordings, who was in it: booking.attendance). The signalling library calls
`authorize` and the `CallHooks`; a call the doctor ends after the patient joined completes
the appointment (booking's one completion path)."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import media
from caretrack.accounts.models import User
from caretrack.booking import attendance
from caretrack.booking.models import Appointment, AppointmentStatus
from caretrack.booking.service import check_outcome, record_outcome
from caretrack.booking.zones import working_zone
from caretrack.consultations.models import Admission, ChatMessage, Consultation, Recording
from caretrack.core import crypto, timetext
from caretrack.core.audit.service import Actor
from caretrack.core.clock import Clock, utcnow
from caretrack.core.errors import CareTrackError, Forbidden, NotFound, ValidationError
from caretrack.core.logs import get_logger
from caretrack.core.settings import Settings
from caretrack.core.transaction import atomic
from caretrack.intake import answers as intake
from signalling import Hooks, Principal, Refused, Role, Seat, StoredChat

log = get_logger("caretrack.consultations")
JOINABLE = frozenset({AppointmentStatus.BOOKED})
# How long after the booked end the call may still be joined (consultations overrun).
LATE_GRACE = timedelta(minutes=60)
CLOSE_CLOSED = 4409
INTAKE_FIRST = "complete the intake questionnaire and sign the consent on the call page before joining"


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CallAccess:
    appointment: Appointment
    role: str  # host | patient | guest
    opens_at: datetime
    closes_at: datetime
    ended: bool
    zone: str = "UTC"  # the caller's working zone (booking.zones), for the times they read

    @property
    def open(self) -> bool:
        return self.appointment.status in JOINABLE and not self.ended

    def show(self, moment: datetime) -> str:
        """"09:50 (Europe/Berlin), Wed 2 Dec": an instant as this caller reads it."""
        return timetext.show(moment, self.zone, "at")

    def closed_reason(self, moment: datetime) -> str | None:
        return Seat(self.role, self.open, self.opens_at, self.closes_at, show=self.show).closed_reason(moment)


async def access_for(settings: Settings, user: User, appointment_id: int) -> CallAccess:
    """The user's seat in this appointment's call; 404 for anyone who has none, so ids do
    not reveal which appointments exist."""
    appointment = await Appointment.get_or_none(id=appointment_id)
    if appointment is None:
        raise NotFound(f"No consultation with id {appointment_id}.")
    if user.id == appointment.doctor_id:
        role = "host"
    elif user.id == appointment.patient_id:
        role = "patient"
    else:  # a guest's seat is their invitation, not their account (consultations/guests.py)
        raise NotFound(f"No consultation with id {appointment_id}.")
    return await call_access(settings, appointment, role, zone=await working_zone(user))


async def call_access(settings: Settings, appointment: Appointment, role: str, *, zone: str) -> CallAccess:
    """The seat `role` holds in this appointment's call: its join window, whether it ended,
    and the zone its reader's times are shown in."""
    consultation = await Consultation.get_or_none(appointment_id=appointment.id)
    return CallAccess(
        appointment, role,
        opens_at=appointment.starts_at - timedelta(minutes=settings.call_window_minutes),
        closes_at=appointment.ends_at + LATE_GRACE,
        ended=consultation is not None and consultation.ended_at is not None,
        zone=zone,
    )


def make_authorize(settings: Settings):
    async def authorize(principal: Principal, consultation_id: str) -> Seat:
        if not consultation_id.isdigit():
            raise Refused(reason=f"'{consultation_id}' is not a consultation id")
        user = await User.get_or_none(id=int(principal.id), is_active=True)
        if user is None:
            raise Refused(reason="your account is not active")
        try:
            access = await access_for(settings, user, int(consultation_id))
        except NotFound as exc:
            raise Refused(reason=exc.message) from None
        if not access.open:
            raise Refused(CLOSE_CLOSED, "this consultation is closed")
        # the patient may check their network meanwhile, but joins only once the intake is done
        pending = access.role == "patient" and not await intake.is_complete(access.appointment)
        admitted = await Admission.exists(appointment_id=access.appointment.id, user_id=user.id)
        return Seat(access.role, True, access.opens_at, access.closes_at, admitted=admitted, show=access.show,
                    join_refused=INTAKE_FIRST if pending else None)

    return authorize


class CallHooks(Hooks):
    """Persist what happens in a call: chat, consent, recordings (encrypted), who was in it
    when, the end. `clock` gives the instant of joins, leaves and the end (the app's)."""

    def __init__(self, settings: Settings, clock: Clock = utcnow) -> None:
        super().__init__()
        self.settings = settings
        self.clock = clock
        self.started: dict[Path, datetime] = {}

    async def on_chat(self, consultation_id: str, principal: Principal, text: str) -> StoredChat:
        async with atomic() as tx:
            message = await ChatMessage.create(using_db=tx.conn, appointment_id=int(consultation_id),
                                               sender_id=int(principal.id), sent_at=now(),
                                               text=crypto.seal(text, "consultation_chat.text"))
            await tx.audit(Actor(int(principal.id)), "phi.write", "consultation_chat", message.id,
                           appointment=int(consultation_id))
        return StoredChat(id=str(message.id), at=message.sent_at)

    async def on_admit(self, consultation_id: str, host: Principal, admitted: Principal) -> None:
        appointment_id = int(consultation_id)
        async with atomic() as tx:
            _, created = await Admission.get_or_create(
                appointment_id=appointment_id, user_id=int(admitted.id),
                defaults={"admitted_by_id": int(host.id), "admitted_at": now()}, using_db=tx.conn)
            if created:
                await tx.audit(Actor(int(host.id)), "consultation.admitted", "appointment", appointment_id,
                               user=int(admitted.id))

    async def on_recording_consent(self, consultation_id: str, principal: Principal, role: str,
                                   granted: bool) -> None:
        async with atomic() as tx:
            await tx.audit(Actor(int(principal.id)), "recording.consent_granted" if granted else
                           "recording.consent_withdrawn", "appointment", int(consultation_id), role=role)

    async def on_recording_started(self, consultation_id: str, path: Path) -> None:
        self.started[path] = now()
        async with atomic() as tx:
            await tx.audit(Actor(None), "recording.started", "appointment", int(consultation_id))

    async def on_recording_stopped(self, consultation_id: str, path: Path) -> None:
        """Encrypt the finished file, then remove the plaintext."""
        started = self.started.pop(path, now())
        name = f"{secrets.token_hex(16)}.rec"
        target = recordings_dir(self.settings) / name
        size = await asyncio.to_thread(crypto.encrypt_file, path, target, recording_context(name))
        await asyncio.to_thread(path.unlink, True)
        async with atomic() as tx:
            recording = await Recording.create(using_db=tx.conn, appointment_id=int(consultation_id), file_name=name,
                                               key_version=crypto.cipher().current_version, size_bytes=size,
                                               started_at=started, stopped_at=now())
            await tx.audit(Actor(None), "recording.stored", "recording", recording.id,
                           appointment=int(consultation_id), size=size)

    async def on_join(self, consultation_id: str, principal: Principal, role: Role) -> str:
        user_id = int(principal.id) if principal.id.isdigit() else None  # a guest by link has no account
        async with atomic() as tx:
            stay = await attendance.record_join(tx.conn, int(consultation_id), principal.id, role, user_id,
                                                self.clock())
        return str(stay.id)

    async def on_arrive(self, consultation_id: str, principal: Principal, role: Role) -> None:
        user_id = int(principal.id) if principal.id.isdigit() else None
        async with atomic() as tx:
            await attendance.record_arrival(tx.conn, int(consultation_id), principal.id, role, user_id, self.clock())

    async def on_leave(self, consultation_id: str, principal: Principal, stay: str) -> None:
        async with atomic() as tx:
            await attendance.record_leave(tx.conn, int(consultation_id), int(stay), self.clock())

    async def on_end(self, consultation_id: str, principal: Principal) -> None:
        """Ended by the doctor: nobody joins again. Then, if the patient joined, the
        appointment is completed whatever the clock says — in its own transaction, so that a
        completion that cannot be made (marked meanwhile) never undoes the end."""
        appointment_id, at = int(consultation_id), self.clock()
        async with atomic() as tx:
            consultation, _ = await Consultation.get_or_create(appointment_id=appointment_id, using_db=tx.conn)
            await Consultation.filter(appointment_id=appointment_id).using_db(tx.conn).update(ended_at=at)
            await tx.audit(Actor(int(principal.id)), "consultation.ended", "appointment", appointment_id)
            appointment = await Appointment.get(id=appointment_id).using_db(tx.conn)
            await tx.emit("consultation.ended", actor_id=int(principal.id), subject=("appointment", appointment_id),
                          users=[appointment.patient_id, appointment.doctor_id])
        try:
            async with atomic() as tx:
                appointment = await Appointment.filter(id=appointment_id).select_for_update().using_db(tx.conn).get()
                presence = await attendance.presence(appointment_id, tx.conn)
                if presence.patient_joined and appointment.status == AppointmentStatus.BOOKED:
                    doctor = await User.get(id=appointment.doctor_id).using_db(tx.conn)
                    check_outcome(appointment, "completed", presence, at)
                    await record_outcome(tx, self.settings, doctor, appointment, "completed", at=at, ended_call=True)
        except CareTrackError as exc:
            log.warning("consultation ended but not completed", appointment=appointment_id, reason=exc.message)


def relay_config(settings: Settings) -> media.RelayConfig:
    """The media relay's configuration, for the embedded relay and `caretrack media` alike.
    Raw recordings are written under the data directory and encrypted when they stop."""
    servers = [media.IceServer(url) for url in settings.stun_urls]
    servers += [media.IceServer(url, settings.turn_username, settings.turn_password) for url in settings.turn_urls]
    raw = settings.data_dir / "recordings" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    ports = (settings.rtc_port_min, settings.rtc_port_max) if settings.rtc_port_min is not None else None
    return media.RelayConfig(ice_servers=tuple(servers), allowed_networks=settings.rtc_allowed_networks,
                             recordings_dir=raw, udp_ports=ports)


def recordings_dir(settings: Settings) -> Path:
    path = settings.data_dir / "recordings"
    path.mkdir(parents=True, exist_ok=True)
    return path


def recording_context(file_name: str) -> str:
    return f"recording:{file_name}"


# --- reads and writes from the pages ---------------------------------------------------------


async def chat_history(settings: Settings, user: User, appointment_id: int) -> list[dict]:
    await access_for(settings, user, appointment_id)
    messages = await ChatMessage.filter(appointment_id=appointment_id).order_by("id").select_related("sender")
    async with atomic() as tx:
        await tx.audit(Actor(user.id), "phi.read", "consultation_chat", None, appointment=appointment_id,
                       messages=len(messages))
    return [{"id": m.id, "at": m.sent_at, "name": m.sender.full_name, "participant": str(m.sender_id),
             "text": crypto.unseal(m.text, "consultation_chat.text")} for m in messages]


async def _doctor_access(settings: Settings, user: User, appointment_id: int) -> CallAccess:
    access = await access_for(settings, user, appointment_id)
    if access.role != "host":
        raise Forbidden("Only the appointment's doctor may do this.")
    return access


async def read_notes(settings: Settings, user: User, appointment_id: int) -> str:
    await _doctor_access(settings, user, appointment_id)
    consultation = await Consultation.get_or_none(appointment_id=appointment_id)
    async with atomic() as tx:
        await tx.audit(Actor(user.id), "phi.read", "consultation_notes", appointment_id)
    if consultation is None or consultation.notes is None:
        return ""
    return crypto.unseal(consultation.notes, "consultations.notes") or ""


async def do_save_notes(settings: Settings, user: User, appointment_id: int, text: str) -> None:
    if len(text) > 20000:
        raise ValidationError("Notes are limited to 20,000 characters.")
    await _doctor_access(settings, user, appointment_id)
    async with atomic() as tx:
        await Consultation.get_or_create(appointment_id=appointment_id, using_db=tx.conn)
        await Consultation.filter(appointment_id=appointment_id).using_db(tx.conn).update(
            notes=crypto.seal(text, "consultations.notes"), notes_updated_at=now())
        await tx.audit(Actor(user.id), "phi.write", "consultation_notes", appointment_id, length=len(text))


async def list_recordings(settings: Settings, user: User, appointment_id: int) -> list[Recording]:
    await _doctor_access(settings, user, appointment_id)
    return await Recording.filter(appointment_id=appointment_id).order_by("id")


async def open_recording(settings: Settings, user: User, appointment_id: int, recording_id: int):
    """(recording, chunk iterator); the access is audited."""
    await _doctor_access(settings, user, appointment_id)
    recording = await Recording.get_or_none(id=recording_id, appointment_id=appointment_id)
    if recording is None:
        raise NotFound(f"No recording with id {recording_id}.")
    async with atomic() as tx:
        await tx.audit(Actor(user.id), "recording.downloaded", "recording", recording.id, appointment=appointment_id)
    path = recordings_dir(settings) / recording.file_name
    return recording, crypto.decrypt_file(path, recording_context(recording.file_name))
