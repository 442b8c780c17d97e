"""Incidents: a carer (on a package they are assigned to) or an admin raises one, on its own or
from a handover note; the office hears of it live, acknowledges it (who, when), then closes it
with an outcome. Each step is audited and emitted; a step out of order is a 409. Closing needs an
acknowledgement first, so the record always shows when the office took an incident on.

What happened, the action taken and the outcome are PHI, sealed on write, and every read that
unseals them is audited. A carer sees only the incidents they raised on their packages; any
other id is 404. Events carry no PHI: the feed words them from the type and severity."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.queryset import QuerySet

from caretrack.accounts.models import User
from caretrack.care.notes_models import HandoverNote, Incident, IncidentKind, IncidentStatus, Severity
from caretrack.care.notes_schemas import IncidentClose, IncidentIn, IncidentQuery
from caretrack.care.service.packages import _package_for
from caretrack.core import crypto
from caretrack.core.audit.service import Actor
from caretrack.core.errors import Conflict, NotFound, ValidationError
from caretrack.core.roles import Role
from caretrack.core.transaction import Tx, atomic

INCIDENT_PHI = ("what_happened", "action_taken", "outcome")
RAISE_LOOKBACK = timedelta(days=30)
# Devices' clocks drift: this far ahead of the server's clock is still "now".
FUTURE_GRACE = timedelta(minutes=5)
SEVERITY_ORDER = {Severity.HIGH: 0, Severity.MEDIUM: 1, Severity.LOW: 2}
LIST_LIMIT = 200
PEOPLE = ("raised_by", "acknowledged_by", "closed_by")


def _seal(value: str | None, column: str) -> str | None:
    return crypto.seal(value, f"care_incidents.{column}")


def check_occurred(occurred_at: datetime | None, at: datetime) -> datetime:
    """When an incident happened: now when not given, else from 30 days back up to now."""
    if occurred_at is None:
        return at
    if occurred_at > at + FUTURE_GRACE:
        raise ValidationError("An incident cannot have happened in the future; give when it happened.")
    if occurred_at < at - RAISE_LOOKBACK:
        raise ValidationError("An incident more than 30 days ago cannot be raised here; tell the office.")
    return occurred_at


async def do_raise_incident(user: User, package_id: int, command: IncidentIn, *, client_address: str | None,
                            at: datetime) -> Incident:
    package = await _package_for(user, package_id)
    when = check_occurred(command.occurred_at, at)
    if command.note_id is not None:
        note = await HandoverNote.get_or_none(id=command.note_id, package_id=package.id)
        if note is None or (user.role != Role.ADMIN and note.author_id != user.id):
            raise NotFound(f"No handover note with id {command.note_id} of yours on this package.")
    async with atomic() as tx:
        incident = await Incident.create(
            using_db=tx.conn, package_id=package.id, raised_by_id=user.id, note_id=command.note_id,
            kind=IncidentKind(command.kind), severity=Severity(command.severity), occurred_at=when, raised_at=at,
            what_happened=_seal(command.what_happened, "what_happened"),
            action_taken=_seal(command.action_taken, "action_taken"))
        actor = Actor(user.id, client_address)
        await tx.audit(actor, "care.incident_raised", "care_incident", incident.id, package_id=package.id,
                       kind=command.kind, severity=command.severity, note_id=command.note_id)
        await tx.audit(actor, "phi.write", "care_incident", incident.id,
                       fields=[f for f in ("what_happened", "action_taken") if getattr(command, f)])
        await _emit(tx, "incident.raised", user, incident)
    return incident


async def _emit(tx: Tx, event_type: str, actor: User, incident: Incident) -> None:
    data: dict[str, Any] = {"incident_id": incident.id, "package_id": incident.package_id,
                            "kind": str(incident.kind), "kind_label": IncidentKind(incident.kind).label,
                            "severity": str(incident.severity), "status": str(incident.status)}
    await tx.emit(event_type, actor_id=actor.id, subject=("care_incident", incident.id), data=data,
                  roles=[Role.ADMIN], users=[incident.raised_by_id])


def _visible(viewer: User) -> QuerySet[Incident]:
    if viewer.role == Role.ADMIN:
        return Incident.all()
    if viewer.role != Role.CARER:
        return Incident.filter(id=0)
    return Incident.filter(raised_by_id=viewer.id, package__carers__carer_id=viewer.id)


async def _incident_for(viewer: User, incident_id: int) -> Incident:
    incident = await _visible(viewer).filter(id=incident_id).first()
    if incident is None:
        raise NotFound(f"No incident with id {incident_id}.")
    return incident


async def _step(admin: User, incident_id: int, *, client_address: str | None, event: str, action: str,
                allowed_from: IncidentStatus, changes: dict[str, Any], phi: list[str] | None = None) -> Incident:
    """Move an incident one step on, from `allowed_from` only (checked in the UPDATE, so two
    admins at once cannot both do it)."""
    incident = await _incident_for(admin, incident_id)
    async with atomic() as tx:
        moved = await Incident.filter(id=incident.id, status=allowed_from).using_db(tx.conn).update(**changes)
        if not moved:
            current = await Incident.get(id=incident.id, using_db=tx.conn)
            raise Conflict(_refusal(incident.id, IncidentStatus(current.status), event))
        await incident.refresh_from_db(using_db=tx.conn)
        actor = Actor(admin.id, client_address)
        await tx.audit(actor, action, "care_incident", incident.id, package_id=incident.package_id)
        if phi:
            await tx.audit(actor, "phi.write", "care_incident", incident.id, fields=phi)
        await _emit(tx, event, admin, incident)
    return incident


def _refusal(incident_id: int, status: IncidentStatus, event: str) -> str:
    if status == IncidentStatus.CLOSED:
        return f"Incident {incident_id} is already closed."
    if event == "incident.acknowledged":
        return f"Incident {incident_id} was already acknowledged."
    return f"Incident {incident_id} is open: acknowledge it before closing it."


async def do_acknowledge_incident(admin: User, incident_id: int, *, client_address: str | None,
                                  at: datetime) -> Incident:
    return await _step(admin, incident_id, client_address=client_address, event="incident.acknowledged",
                       action="care.incident_acknowledged", allowed_from=IncidentStatus.OPEN,
                       changes={"status": IncidentStatus.ACKNOWLEDGED, "acknowledged_by_id": admin.id,
                                "acknowledged_at": at})


async def do_close_incident(admin: User, incident_id: int, command: IncidentClose, *, client_address: str | None,
                            at: datetime) -> Incident:
    return await _step(admin, incident_id, client_address=client_address, event="incident.closed",
                       action="care.incident_closed", allowed_from=IncidentStatus.ACKNOWLEDGED,
                       changes={"status": IncidentStatus.CLOSED, "closed_by_id": admin.id, "closed_at": at,
                                "outcome": _seal(command.outcome, "outcome")}, phi=["outcome"])


@dataclass
class IncidentView:
    incident: Incident
    what_happened: str
    action_taken: str | None
    outcome: str | None

    @property
    def kind_label(self) -> str:
        return IncidentKind(self.incident.kind).label


async def read_incidents(viewer: User, incidents: list[Incident], client_address: str | None) -> list[IncidentView]:
    """The incidents' text (one audited PHI read); fetched with prefetch_related(*PEOPLE)."""
    if incidents:
        async with atomic() as tx:
            await tx.audit(Actor(viewer.id, client_address), "phi.read", "care_incident", None,
                           fields=list(INCIDENT_PHI), ids=[i.id for i in incidents])
    return [IncidentView(i, crypto.unseal(i.what_happened, "care_incidents.what_happened") or "",
                         crypto.unseal(i.action_taken, "care_incidents.action_taken"),
                         crypto.unseal(i.outcome, "care_incidents.outcome")) for i in incidents]


async def get_incident(viewer: User, incident_id: int, client_address: str | None) -> IncidentView:
    incident = await _incident_for(viewer, incident_id)
    await incident.fetch_related(*PEOPLE)
    return (await read_incidents(viewer, [incident], client_address))[0]


async def list_incidents(viewer: User, query: IncidentQuery, client_address: str | None) -> list[IncidentView]:
    """Incidents the viewer may see: by default the open and acknowledged ones, most severe
    first, then newest."""
    rows = _visible(viewer)
    if query.status == "active":
        rows = rows.filter(status__in=[IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED])
    else:
        rows = rows.filter(status=IncidentStatus(query.status))
    if query.package_id is not None:
        rows = rows.filter(package_id=query.package_id)
    found = list(await rows.distinct().order_by("-raised_at", "-id").limit(LIST_LIMIT).prefetch_related(*PEOPLE))
    if query.status == "active":
        found.sort(key=lambda i: SEVERITY_ORDER[Severity(i.severity)])  # stable: newest first within a severity
    return await read_incidents(viewer, found, client_address)
