"""Incidents: raised by a carer or an admin, acknowledged, closed; steps out of order are 409;
sealed, audited, announced without PHI; a carer sees only their own; over the API and the pages."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from caretrack.care import service as care
from caretrack.care.notes_models import Incident, IncidentStatus
from caretrack.care.notes_schemas import IncidentClose, IncidentIn, IncidentQuery, NoteIn
from caretrack.core.audit.models import AuditEntry
from caretrack.core.errors import Conflict, NotFound, ValidationError
from caretrack.core.outbox import store as outbox
from caretrack.core.roles import Role
from caretrack.core.validation import parse_command
from tests.care.helpers import admin_user, package_with_task
from tests.helpers import csrf_token, login, make_user

FALL = {"kind": "fall", "severity": "high", "what_happened": "Found on the bathroom floor",
        "action_taken": "Called 111; stayed until the paramedics came"}


async def _events(user_id: int, prefix: str = "incident.") -> list:
    return [d.event for d in await outbox.read_history(user_id, after=0) if d.event.type.startswith(prefix)]


async def test_an_incident_goes_open_acknowledged_closed_and_refuses_other_steps(database, now):
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    package, _ = await package_with_task(admin, cara)
    incident = await care.do_raise_incident(cara, package.id, IncidentIn.model_validate(
        {**FALL, "occurred_at": (now - timedelta(hours=1)).isoformat()}), client_address="10.0.0.1", at=now)
    row = await Incident.get(id=incident.id)
    assert "bathroom" not in row.what_happened and "111" not in row.action_taken
    assert (row.status, row.raised_at, row.occurred_at) == (IncidentStatus.OPEN, now, now - timedelta(hours=1))
    with pytest.raises(Conflict, match="acknowledge it before closing it"):
        await care.do_close_incident(admin, incident.id, IncidentClose(outcome="GP visited"), client_address=None,
                                     at=now)
    await care.do_acknowledge_incident(admin, incident.id, client_address=None, at=now + timedelta(minutes=5))
    with pytest.raises(Conflict, match="already acknowledged"):
        await care.do_acknowledge_incident(admin, incident.id, client_address=None, at=now)
    await care.do_close_incident(admin, incident.id, IncidentClose(outcome="GP visited; no fracture"),
                                 client_address=None, at=now + timedelta(hours=2))
    for step in (care.do_acknowledge_incident(admin, incident.id, client_address=None, at=now),
                 care.do_close_incident(admin, incident.id, IncidentClose(outcome="again"), client_address=None,
                                        at=now)):
        with pytest.raises(Conflict, match="already closed"):
            await step
    row = await Incident.get(id=incident.id)
    assert (row.acknowledged_by_id, row.acknowledged_at) == (admin.id, now + timedelta(minutes=5))
    assert (row.closed_by_id, row.closed_at, row.status) == (admin.id, now + timedelta(hours=2), IncidentStatus.CLOSED)
    assert "fracture" not in row.outcome
    view = await care.get_incident(cara, incident.id, None)
    assert view.outcome == "GP visited; no fracture" and view.kind_label == "Fall"
    actions = [e.action for e in await AuditEntry.filter(subject_type="care_incident").order_by("seq")]
    assert [a for a in actions if a.startswith("care.")] == [
        "care.incident_raised", "care.incident_acknowledged", "care.incident_closed"]
    assert actions.count("phi.write") == 2 and "phi.read" in actions
    # each step reaches the office and the carer who raised it, without PHI
    for user in (admin, cara):
        events = await _events(user.id)
        assert [e.type for e in events] == ["incident.raised", "incident.acknowledged", "incident.closed"]
        assert [e.data["status"] for e in events] == ["open", "acknowledged", "closed"]
    raised = (await _events(admin.id))[0]
    assert raised.data == {"incident_id": incident.id, "package_id": package.id, "kind": "fall", "kind_label": "Fall",
                           "severity": "high", "status": "open"}
    assert raised.actor_id == cara.id and "bathroom" not in json.dumps(raised.data)


async def test_incident_input_and_ownership(database, now):
    admin, _ = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org")
    carl = await make_user(Role.CARER, "carl@example.org")
    package, _ = await package_with_task(admin, cara)
    with pytest.raises(ValidationError, match="'flood' is not one of"):
        parse_command(IncidentIn, {**FALL, "kind": "flood"})
    with pytest.raises(ValidationError, match="account of what happened is required"):
        parse_command(IncidentIn, {**FALL, "what_happened": " "})
    with pytest.raises(ValidationError, match="future"):
        await care.do_raise_incident(cara, package.id, IncidentIn.model_validate(
            {**FALL, "occurred_at": (now + timedelta(hours=1)).isoformat()}), client_address=None, at=now)
    with pytest.raises(ValidationError, match="30 days"):
        await care.do_raise_incident(cara, package.id, IncidentIn.model_validate(
            {**FALL, "occurred_at": (now - timedelta(days=31)).isoformat()}), client_address=None, at=now)
    with pytest.raises(NotFound):  # not carl's package
        await care.do_raise_incident(carl, package.id, IncidentIn.model_validate(FALL), client_address=None, at=now)
    # raised from a note: the note must be on the package and the carer's own
    note = await care.do_write_note(cara, package.id, NoteIn(text="Bruise on left arm", for_office=True),
                                    client_address=None, at=now)
    incident = await care.do_raise_incident(cara, package.id, IncidentIn.model_validate(
        {**FALL, "kind": "injury", "severity": "medium", "note_id": note.id}), client_address=None, at=now)
    assert (await Incident.get(id=incident.id)).note_id == note.id
    other, _ = await package_with_task(admin, carl, client_name="Mr Other")
    with pytest.raises(NotFound, match="handover note"):
        await care.do_raise_incident(carl, other.id, IncidentIn.model_validate({**FALL, "note_id": note.id}),
                                     client_address=None, at=now)
    # an admin raises one too; carers see only theirs, admins all, most severe first
    await care.do_raise_incident(admin, package.id, IncidentIn.model_validate({**FALL, "severity": "low"}),
                                 client_address=None, at=now)
    high = await care.do_raise_incident(cara, package.id, IncidentIn.model_validate(FALL), client_address=None,
                                        at=now)
    everything = await care.list_incidents(admin, IncidentQuery(), None)
    assert [v.incident.severity.value for v in everything] == ["high", "medium", "low"]
    mine = await care.list_incidents(cara, IncidentQuery(), None)
    assert sorted(v.incident.id for v in mine) == sorted([incident.id, high.id])
    assert await care.list_incidents(carl, IncidentQuery(), None) == []
    with pytest.raises(NotFound):
        await care.get_incident(carl, high.id, None)


async def test_the_incident_api_checks_roles_ownership_and_order(app, client):
    admin, secret = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    await make_user(Role.CARER, "carl@example.org", name="Carl Carer")
    package, _ = await package_with_task(admin, cara)
    await login(client, "cara@example.org")
    headers = {"x-csrf-token": await csrf_token(client)}
    bad = await client.post(f"/api/v1/care/packages/{package.id}/incidents", headers=headers,
                            json={**FALL, "severity": "catastrophic"})
    assert bad.status_code == 422 and "severity" in bad.json()["error"]["message"]
    raised = await client.post(f"/api/v1/care/packages/{package.id}/incidents", headers=headers, json=FALL)
    assert raised.status_code == 201, raised.text
    body = raised.json()
    assert body["status"] == "open" and body["what_happened"] == FALL["what_happened"]
    assert body["raised_by_name"] == "Cara Carer" and body["kind_label"] == "Fall"
    incident_id = body["id"]
    assert (await client.post(f"/api/v1/care/incidents/{incident_id}/acknowledgement",
                              headers=headers)).status_code == 403
    listed = (await client.get("/api/v1/care/incidents")).json()["incidents"]
    assert [i["id"] for i in listed] == [incident_id]
    assert (await client.get("/api/v1/care/incidents?status=later")).status_code == 422

    await login(client, "carl@example.org")
    headers = {"x-csrf-token": await csrf_token(client)}
    assert (await client.get(f"/api/v1/care/incidents/{incident_id}")).status_code == 404
    assert (await client.get("/api/v1/care/incidents")).json() == {"incidents": []}
    assert (await client.post(f"/api/v1/care/packages/{package.id}/incidents", headers=headers,
                              json=FALL)).status_code == 404

    await login(client, admin.email, totp_secret=secret)
    headers = {"x-csrf-token": await csrf_token(client)}
    early = await client.post(f"/api/v1/care/incidents/{incident_id}/closure", headers=headers,
                              json={"outcome": "Resolved"})
    assert early.status_code == 409 and "acknowledge it before closing" in early.json()["error"]["message"]
    acked = await client.post(f"/api/v1/care/incidents/{incident_id}/acknowledgement", headers=headers)
    assert acked.status_code == 200 and acked.json()["status"] == "acknowledged"
    again = await client.post(f"/api/v1/care/incidents/{incident_id}/acknowledgement", headers=headers)
    assert again.status_code == 409
    closed = await client.post(f"/api/v1/care/incidents/{incident_id}/closure", headers=headers,
                               json={"outcome": "Family informed; falls assessment booked"})
    assert closed.status_code == 200 and closed.json()["outcome"] == "Family informed; falls assessment booked"
    assert (await client.get("/api/v1/care/incidents")).json() == {"incidents": []}
    assert [i["id"] for i in (await client.get("/api/v1/care/incidents?status=closed")).json()["incidents"]] == [
        incident_id]
    assert (await client.post("/api/v1/care/incidents/99999/acknowledgement", headers=headers)).status_code == 404
    document = (await client.get("/api/v1/openapi.json")).json()
    for path in ("/api/v1/care/packages/{package_id}/incidents", "/api/v1/care/incidents",
                 "/api/v1/care/incidents/{incident_id}/acknowledgement", "/api/v1/care/incidents/{incident_id}/closure",
                 "/api/v1/care/packages/{package_id}/notes", "/api/v1/care/packages/{package_id}/handover"):
        assert path in document["paths"], path
    assert "409" in document["paths"]["/api/v1/care/incidents/{incident_id}/closure"]["post"]["responses"]


async def test_the_incident_pages_raise_acknowledge_and_close(app, client):
    admin, secret = await admin_user()
    cara = await make_user(Role.CARER, "cara@example.org", name="Cara Carer")
    package, _ = await package_with_task(admin, cara)
    await login(client, "cara@example.org")
    token = await csrf_token(client, "/carer")
    dashboard = (await client.get("/carer")).text
    assert f'action="/carer/packages/{package.id}/incidents"' in dashboard
    refused = await client.post(f"/carer/packages/{package.id}/incidents", data={
        "kind": "fall", "severity": "high", "what_happened": FALL["what_happened"]})
    assert refused.status_code == 403  # no CSRF token
    bad = await client.post(f"/carer/packages/{package.id}/incidents", data={
        "kind": "fall", "severity": "high", "what_happened": "", "csrf_token": token})
    assert bad.status_code == 422 and "account of what happened is required" in bad.text
    sent = await client.post(f"/carer/packages/{package.id}/incidents", data={
        "kind": "fall", "severity": "high", "what_happened": FALL["what_happened"], "occurred_at": "",
        "csrf_token": token})
    assert sent.status_code == 303 and sent.headers["location"].startswith("/carer/incidents#incident-")
    mine = (await client.get("/carer/incidents")).text
    assert FALL["what_happened"] in mine and "Acknowledge" not in mine
    assert (await client.get("/admin/care/incidents")).status_code == 403

    await login(client, admin.email, totp_secret=secret)
    token = await csrf_token(client, "/admin/care/incidents")
    page = (await client.get("/admin/care/incidents")).text
    assert FALL["what_happened"] in page and "Mrs Iris Client" in page and 'data-live-events="incident.raised' in page
    incident = await Incident.get()
    ack = await client.post(f"/admin/care/incidents/{incident.id}/acknowledge",
                            data={"csrf_token": token, "back": "package"})
    assert ack.status_code == 303 and ack.headers["location"] == f"/admin/care/packages/{package.id}#timeline"
    package_page = (await client.get(f"/admin/care/packages/{package.id}")).text
    assert "Close incident" in package_page and "acknowledged by Bo Boss" in package_page
    twice = await client.post(f"/admin/care/incidents/{incident.id}/acknowledge", data={"csrf_token": token})
    assert twice.status_code == 409 and "already acknowledged" in twice.text
    closed = await client.post(f"/admin/care/incidents/{incident.id}/close",
                               data={"csrf_token": token, "outcome": "Falls team referral"})
    assert closed.status_code == 303 and closed.headers["location"] == "/admin/care/incidents"
    assert "No open incidents" in (await client.get("/admin/care/incidents/live")).text
    raised = await client.post(f"/admin/care/packages/{package.id}/incidents", data={
        "kind": "property_damage", "severity": "low", "what_happened": "Broken mug", "csrf_token": token})
    assert raised.status_code == 303
    assert "Broken mug" in (await client.get("/admin/care/incidents/live")).text
    # from a carer's note on the package's timeline
    note = await care.do_write_note(cara, package.id, NoteIn(text="Bruise on the left arm", for_office=True),
                                    client_address=None, at=incident.raised_at)
    assert f'name="note_id" value="{note.id}"' in (await client.get(f"/admin/care/packages/{package.id}")).text
    from_note = await client.post(f"/admin/care/packages/{package.id}/incidents", data={
        "kind": "injury", "severity": "medium", "what_happened": "Bruise, cause unknown", "note_id": str(note.id),
        "csrf_token": token})
    assert from_note.status_code == 303
    assert (await Incident.get(kind="injury")).note_id == note.id
