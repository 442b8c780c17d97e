"""Handover notes and incidents as live events: their shape and recipients (no PHI in the data),
their feed lines, and that applying them to the feed an admin had gives a fresh fetch."""

from __future__ import annotations

import json

from caretrack.care import service as care
from caretrack.care.notes_schemas import IncidentClose, IncidentIn, NoteIn
from caretrack.core.roles import Role
from tests.care.helpers import package_with_task
from tests.realtime.conftest import connect, make_user, sign_in
from tests.realtime.test_event_shapes import admin_view, check_applied_equals_fresh, finish


async def test_a_note_reaches_the_office_and_the_next_carer_without_its_text(server):
    admin, sockets, api, before = await admin_view(server)
    cara = await make_user(Role.CARER, name="Cara Carer")
    carl = await make_user(Role.CARER, name="Carl Carer")
    package, _ = await package_with_task(admin, cara)
    await care.do_assign_carer(admin, package.id, carl.id, None)
    sockets["carl"] = await connect(server, await sign_in(carl, server.settings))
    note = await care.do_write_note(cara, package.id, NoteIn(text="Slight nausea reported", for_office=True,
                                                             for_next_carer=True), client_address=None,
                                    at=await _now())
    [message] = await sockets["admin"].wait_for(1)
    await sockets["second"].wait_for(1)
    [for_carl] = await sockets["carl"].wait_for(1)
    event = message["event"]
    assert event["type"] == "care.note" and for_carl["event"]["type"] == "care.note"
    assert event["actor_id"] == cara.id
    assert event["subject"] == {"kind": "care_package", "id": str(package.id)}
    assert event["data"] == {"note_id": note.id, "package_id": package.id, "completion_id": None,
                             "for_office": True, "for_next_carer": True}
    assert "nausea" not in json.dumps(message) and "Iris" not in json.dumps(message)
    assert sockets["carer"].received == []  # a carer of other packages hears nothing
    [item] = await check_applied_equals_fresh(api, before, sockets["admin"])
    assert item["text"] == f"Cara Carer left a note for the office and the next carer on care package {package.id}"
    assert item["kind_label"] == "Care packages and notes"
    await finish(sockets, api)


async def test_an_incident_raised_acknowledged_and_closed_reaches_the_office_live(server):
    admin, sockets, api, before = await admin_view(server)
    cara = await make_user(Role.CARER, name="Cara Carer")
    package, _ = await package_with_task(admin, cara)
    sockets["cara"] = await connect(server, await sign_in(cara, server.settings))
    at = await _now()
    incident = await care.do_raise_incident(cara, package.id, IncidentIn.model_validate({
        "kind": "medication_error", "severity": "high", "what_happened": "Evening dose given twice"}),
        client_address=None, at=at)
    await care.do_acknowledge_incident(admin, incident.id, client_address=None, at=at)
    await care.do_close_incident(admin, incident.id, IncidentClose(outcome="GP advised; no harm"),
                                 client_address=None, at=at)
    messages = await sockets["admin"].wait_for(3)
    await sockets["second"].wait_for(3)
    assert [m["event"]["type"] for m in await sockets["cara"].wait_for(3)] == [
        "incident.raised", "incident.acknowledged", "incident.closed"]
    assert [m["event"]["type"] for m in messages] == ["incident.raised", "incident.acknowledged", "incident.closed"]
    assert messages[0]["event"]["data"] == {"incident_id": incident.id, "package_id": package.id,
                                            "kind": "medication_error", "kind_label": "Medication error",
                                            "severity": "high", "status": "open"}
    assert "twice" not in json.dumps(messages) and "harm" not in json.dumps(messages)
    assert sockets["carer"].received == []
    items = await check_applied_equals_fresh(api, before, sockets["admin"])
    assert [i["text"] for i in items] == [
        f"Cara Carer raised a high-severity incident (medication error) on care package {package.id}",
        f"Ada Admin acknowledged incident {incident.id} (medication error, high severity) on care package "
        f"{package.id}",
        f"Ada Admin closed incident {incident.id} (medication error, high severity) on care package {package.id}"]
    assert {i["kind_label"] for i in items} == {"Incidents"}
    await finish(sockets, api)


async def _now():
    from datetime import UTC, datetime

    # The services take the instant; these tests are about delivery, so any fixed one will do.
    return datetime(2026, 3, 29, 5, 0, tzinfo=UTC)
