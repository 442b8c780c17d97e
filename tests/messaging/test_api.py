"""Messaging over the API and pages, on SQLite and PostgreSQL: who may talk, 404s for
outsiders, bodies encrypted at rest, audit rows, read receipts, unread counts, paging,
closing and blocking."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from tortoise import connections

from caretrack.booking.models import AppointmentStatus
from caretrack.core import crypto
from caretrack.core.audit.models import AuditEntry
from caretrack.core.roles import Role
from tests.messaging.conftest import T0, booked, person

THREADS = "/api/v1/messages/threads"


async def start(client, other_id=None):
    return await client.post(THREADS, json={} if other_id is None else {"with_user_id": other_id})


async def send(client, thread_id, text):
    return await client.post(f"{THREADS}/{thread_id}/messages", json={"text": text})


async def care_thread(clients, cast):
    patient, doctor = await clients.of(cast.patient), await clients.of(cast.doctor)
    response = await start(patient, cast.doctor.id)
    assert response.status_code == 201, response.text
    return patient, doctor, response.json()["id"]


# --- who may talk -----------------------------------------------------------------------------


async def test_a_patient_and_their_doctor_share_one_thread(clients, cast):
    patient, doctor, thread_id = await care_thread(clients, cast)
    from_doctor = await start(doctor, cast.patient.id)
    assert from_doctor.status_code == 201
    assert from_doctor.json()["id"] == thread_id
    assert from_doctor.json()["with_name"] == "Pat Patient"
    assert (await start(patient, cast.doctor.id)).json()["with_name"] == "Dr Dana"


async def test_nobody_without_a_care_relationship_can_start_a_thread(clients, cast):
    stranger = await clients.of(cast.stranger)
    patient = await clients.of(cast.patient)
    refused = [
        await start(stranger, cast.doctor.id),          # never booked this doctor
        await start(patient, cast.other_doctor.id),     # a doctor the patient never booked
        await start(patient, cast.stranger.id),         # another patient
        await start(patient, cast.admin.id),            # an admin
        await start(patient, 2_000_000),                # nobody at all
        await start(patient, cast.patient.id),          # oneself
    ]
    assert [r.status_code for r in refused] == [404] * 6
    # The same words whether the user exists or not: nothing reveals who is registered.
    assert refused[1].json()["error"]["message"] == f"No one with id {cast.other_doctor.id} that you can message."
    assert refused[4].json()["error"]["message"] == "No one with id 2000000 that you can message."
    assert (await start(patient)).status_code == 422


async def test_a_hold_that_was_never_booked_is_no_care_relationship(clients, cast):
    newcomer = await person(Role.PATIENT, "Hal Holder")
    await booked(newcomer, cast.other_doctor, status=AppointmentStatus.EXPIRED, booked_at=None)
    response = await start(await clients.of(newcomer), cast.other_doctor.id)
    assert response.status_code == 404
    cancelled = await person(Role.PATIENT, "Cass Cancelled")
    await booked(cancelled, cast.other_doctor, status=AppointmentStatus.CANCELLED)
    # a booking cancelled before it took place is not one either (book, cancel, message any doctor)
    assert (await start(await clients.of(cancelled), cast.other_doctor.id)).status_code == 404
    seen = await person(Role.PATIENT, "Sid Seen")
    await booked(seen, cast.other_doctor, status=AppointmentStatus.COMPLETED)
    assert (await start(await clients.of(seen), cast.other_doctor.id)).status_code == 201


async def test_a_carer_talks_to_the_office_and_every_admin_sees_it(clients, cast):
    carer, admin, second = (await clients.of(cast.carer), await clients.of(cast.admin),
                            await clients.of(cast.second_admin))
    response = await start(carer)
    assert response.status_code == 201
    thread = response.json()
    assert (thread["kind"], thread["with_name"]) == ("office", "The office")
    assert (await start(carer, cast.admin.id)).status_code == 422
    assert "Carers message the office" in (await start(carer, cast.admin.id)).json()["error"]["message"]
    assert (await start(admin, cast.carer.id)).json()["id"] == thread["id"]
    wrong = await start(admin, cast.patient.id)
    assert wrong.status_code == 422
    assert wrong.json()["error"]["message"] == "The office messages carers; Pat Patient is a patient."
    assert (await send(carer, thread["id"], "The Tuesday visit moved to 3pm")).status_code == 201
    for office in (admin, second):
        listed = (await office.get(THREADS)).json()
        assert [(t["id"], t["with_name"], t["unread"]) for t in listed["threads"]] == [(thread["id"], "Cara Carer", 1)]
    # one admin reads it: the office has read it
    page = (await second.get(f"{THREADS}/{thread['id']}")).json()
    assert [m["text"] for m in page["messages"]] == ["The Tuesday visit moved to 3pm"]
    assert (await admin.get("/api/v1/messages/unread")).json() == {"unread": 0}
    reply = await send(admin, thread["id"], "Noted, thanks")
    assert reply.status_code == 201
    assert (await carer.get("/api/v1/messages/unread")).json() == {"unread": 1}


async def test_another_users_thread_is_a_404(clients, cast):
    patient, doctor, thread_id = await care_thread(clients, cast)
    assert (await send(patient, thread_id, "Hello doctor")).status_code == 201
    carer = await clients.of(cast.carer)
    office_id = (await start(carer)).json()["id"]
    outsiders = [await clients.of(u) for u in (cast.stranger, cast.other_doctor, cast.admin)]
    for outsider in outsiders:
        for response in (await outsider.get(f"{THREADS}/{thread_id}"), await send(outsider, thread_id, "hi"),
                         await outsider.post(f"{THREADS}/{thread_id}/close"),
                         await outsider.get(f"/messages/{thread_id}")):
            assert response.status_code == 404, (response.request.url, response.text[:200])
        assert "Hello doctor" not in (await outsider.get(f"/messages/{thread_id}")).text
    for outsider in (patient, doctor, await clients.of(await person(Role.CARER, "Other Carer"))):
        assert (await outsider.get(f"{THREADS}/{office_id}")).status_code == 404
    missing = await patient.get(f"{THREADS}/{thread_id + 1000}")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == f"No message thread with id {thread_id + 1000}."


# --- at rest, audited ------------------------------------------------------------------------------


async def test_bodies_are_encrypted_at_rest_and_every_send_and_read_is_audited(clients, cast):
    patient, doctor, thread_id = await care_thread(clients, cast)
    text = "My rash spread to the left arm overnight"
    sent = (await send(patient, thread_id, text)).json()
    conn = connections.get("default")
    _, rows = await conn.execute_query("SELECT body FROM messages WHERE id = " + str(int(sent["id"])))
    raw = rows[0]["body"]
    assert text not in raw and "rash" not in raw
    assert crypto.unseal(raw, "messages.body") == text
    assert (await doctor.get(f"{THREADS}/{thread_id}")).json()["messages"][0]["text"] == text

    writes = await AuditEntry.filter(action="phi.write", subject_type="message")
    assert [(w.actor_id, w.subject_id, json.loads(w.detail)["thread"]) for w in writes] == \
        [(cast.patient.id, str(sent["id"]), thread_id)]
    reads = await AuditEntry.filter(action="phi.read", subject_type="message_thread").order_by("seq")
    assert [(r.actor_id, r.subject_id) for r in reads] == [(cast.doctor.id, str(thread_id))]
    assert text not in "".join(r.detail for r in await AuditEntry.all())


async def test_the_message_length_is_limited(clients, cast):
    patient, _, thread_id = await care_thread(clients, cast)
    too_long = await send(patient, thread_id, "x" * 4001)
    assert too_long.status_code == 422
    assert "longer than 4000 characters" in too_long.json()["error"]["message"]
    blank = await send(patient, thread_id, "   ")
    assert blank.status_code == 422
    assert blank.json()["error"]["message"] == "Write a message or attach a file."
    assert (await send(patient, thread_id, "x" * 4000)).status_code == 201


# --- receipts, unread counts, order, paging ------------------------------------------------------


async def test_read_receipts_and_unread_counts(clients, cast, app):
    patient, doctor, thread_id = await care_thread(clients, cast)
    first = (await send(patient, thread_id, "First")).json()
    await send(patient, thread_id, "Second")
    assert first["read_at"] is None and first["mine"] is True
    assert (await doctor.get("/api/v1/messages/unread")).json() == {"unread": 2}
    assert (await patient.get("/api/v1/messages/unread")).json() == {"unread": 0}
    assert [t["unread"] for t in (await doctor.get(THREADS)).json()["threads"]] == [2]
    assert re.search(r'data-unread-badge aria-label="2 unread">2<', (await doctor.get("/account")).text)

    # the sender reading their own thread reads nothing of theirs
    assert [m["read_at"] for m in (await patient.get(f"{THREADS}/{thread_id}")).json()["messages"]] == [None, None]
    assert (await doctor.get("/api/v1/messages/unread")).json() == {"unread": 2}

    opened = await doctor.get(f"/messages/{thread_id}")
    assert opened.status_code == 200 and "First" in opened.text and "Second" in opened.text
    assert (await doctor.get("/api/v1/messages/unread")).json() == {"unread": 0}
    assert 'data-unread-badge aria-label="0 unread" hidden' in (await doctor.get("/account")).text
    seen = (await patient.get(f"{THREADS}/{thread_id}")).json()["messages"]
    assert [m["read_at"] for m in seen] == [T0.isoformat().replace("+00:00", "Z")] * 2
    assert "Read 08 Mar 2026, 23:59" in (await patient.get(f"/messages/{thread_id}")).text


async def test_threads_are_listed_by_newest_activity_and_paged_oldest_first(clients, cast, app):
    other = await person(Role.DOCTOR, "Dr Zed")
    await booked(cast.patient, other)
    app.state.clock = lambda: T0 - timedelta(minutes=10)
    patient, _, first_thread = await care_thread(clients, cast)
    second_thread = (await start(patient, other.id)).json()["id"]
    app.state.clock = lambda: T0 - timedelta(minutes=5)
    await send(patient, first_thread, "newest activity here")
    assert [t["id"] for t in (await patient.get(THREADS)).json()["threads"]] == [first_thread, second_thread]
    app.state.clock = lambda: T0
    for n in range(6):
        await send(patient, second_thread, f"message {n}")
    assert [t["id"] for t in (await patient.get(THREADS)).json()["threads"]] == [second_thread, first_thread]

    page = (await patient.get(f"{THREADS}/{second_thread}", params={"limit": 2})).json()
    assert [m["text"] for m in page["messages"]] == ["message 4", "message 5"]
    assert page["older"] is True
    before = (await patient.get(f"{THREADS}/{second_thread}",
                                params={"limit": 3, "before": page["messages"][0]["id"]})).json()
    assert [m["text"] for m in before["messages"]] == ["message 1", "message 2", "message 3"]
    assert before["older"] is True
    rest = (await patient.get(f"{THREADS}/{second_thread}",
                              params={"limit": 3, "before": before["messages"][0]["id"]})).json()
    assert ([m["text"] for m in rest["messages"]], rest["older"]) == (["message 0"], False)
    after = (await patient.get(f"{THREADS}/{second_thread}", params={"after": page["messages"][0]["id"]})).json()
    assert [m["text"] for m in after["messages"]] == ["message 5"]
    both = await patient.get(f"{THREADS}/{second_thread}", params={"after": 1, "before": 9})
    assert both.status_code == 422


# --- closing and blocking ------------------------------------------------------------------------


async def test_a_closed_thread_takes_no_messages_until_its_closer_reopens_it(clients, cast):
    patient, doctor, thread_id = await care_thread(clients, cast)
    closed = await doctor.post(f"{THREADS}/{thread_id}/close")
    assert closed.status_code == 200 and closed.json()["state"] == "closed"
    for client in (patient, doctor):
        refused = await send(client, thread_id, "still there?")
        assert refused.status_code == 409
        assert "closed" in refused.json()["error"]["message"]
    page = await patient.get(f"/messages/{thread_id}")
    assert "This conversation is closed." in page.text and 'id="send-form"' not in page.text
    assert (await doctor.post(f"{THREADS}/{thread_id}/close")).status_code == 409
    not_theirs = await patient.post(f"{THREADS}/{thread_id}/reopen")
    assert not_theirs.status_code == 403
    assert not_theirs.json()["error"]["message"] == "Only the doctor who closed this conversation can reopen it."
    reopened = await doctor.post(f"{THREADS}/{thread_id}/reopen")
    assert reopened.json()["state"] == "open"
    assert (await send(patient, thread_id, "thanks for reopening")).status_code == 201


async def test_a_patient_blocks_a_doctor(clients, cast):
    patient, doctor, thread_id = await care_thread(clients, cast)
    blocked = await patient.post(f"{THREADS}/{thread_id}/block")
    assert blocked.status_code == 200
    assert (blocked.json()["state"], blocked.json()["blocked_by_me"]) == ("blocked", True)
    refused = await send(doctor, thread_id, "please call the clinic")
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == ("The patient has blocked messages from you in this conversation, "
                                                  "so you cannot send here.")
    assert (await doctor.get(f"{THREADS}/{thread_id}")).json()["messages"] == []
    assert (await doctor.post(f"{THREADS}/{thread_id}/block")).status_code == 409
    assert (await doctor.post(f"{THREADS}/{thread_id}/unblock")).status_code == 403
    own = await send(patient, thread_id, "hm")
    assert own.status_code == 403 and "unblock it" in own.json()["error"]["message"]
    assert (await patient.post(f"{THREADS}/{thread_id}/unblock")).json()["state"] == "open"
    assert (await send(doctor, thread_id, "please call the clinic")).status_code == 201
    # the doctor may block a patient too; an office thread has nobody to block
    assert (await doctor.post(f"{THREADS}/{thread_id}/block")).json()["blocked_by_me"] is True
    assert (await send(patient, thread_id, "hello?")).status_code == 403
    # the blocked side can neither close nor reopen (it would shut the blocker out)
    for action in ("close", "reopen"):
        refused = await patient.post(f"{THREADS}/{thread_id}/{action}")
        assert refused.status_code == 403 and "cannot close or reopen" in refused.json()["error"]["message"]
    carer = await clients.of(cast.carer)
    office = (await start(carer)).json()["id"]
    assert (await carer.post(f"{THREADS}/{office}/block")).status_code == 422


async def test_the_thread_pages_start_send_and_change_state_through_forms(clients, cast):
    patient = await clients.of(cast.patient)
    listing = await patient.get("/messages")
    assert "Dr Dana" in listing.text and "Dr Other" not in listing.text
    no_token = await patient.post("/messages/start", data={"with_user_id": str(cast.doctor.id)},
                                  headers={"x-csrf-token": ""})
    assert no_token.status_code == 403
    started = await patient.post("/messages/start", data={"with_user_id": str(cast.doctor.id),
                                                         "csrf_token": patient.csrf})
    assert started.status_code == 303
    thread_url = started.headers["location"]
    sent = await patient.post(thread_url, data={"text": "From the form", "csrf_token": patient.csrf})
    assert sent.status_code == 303
    assert "From the form" in (await patient.get(thread_url)).text
    blank = await patient.post(thread_url, data={"text": "", "csrf_token": patient.csrf})
    assert blank.status_code == 422 and "Write a message or attach a file." in blank.text
    closed = await patient.post(thread_url + "/close", data={"csrf_token": patient.csrf})
    assert closed.status_code == 303
    assert "This conversation is closed." in (await patient.get(thread_url)).text
    # from an appointment page: the doctor opens the same thread
    doctor = await clients.of(cast.doctor)
    appointment = await booked(cast.patient, cast.doctor)
    page = await doctor.get(f"/appointments/{appointment.id}")
    assert "Message Pat Patient" in page.text
    via = await doctor.post("/messages/start", data={"appointment_id": str(appointment.id), "csrf_token": doctor.csrf})
    assert via.headers["location"] == thread_url
    stranger = await clients.of(cast.stranger)
    assert (await stranger.post("/messages/start", data={"appointment_id": str(appointment.id),
                                                         "csrf_token": stranger.csrf})).status_code == 404
