"""Every event messaging emits: its shape and recipients (never the message text), and that
applying the events to what a page showed gives what a fresh fetch shows."""

from __future__ import annotations

from datetime import timedelta

from caretrack.core.roles import Role
from caretrack.messaging import service
from caretrack.messaging.schemas import MessageIn, ThreadStart
from tests.messaging.conftest import T0, booked
from tests.realtime.conftest import connect, make_user, sentinel, sign_in

TEXT = "The swelling is worse since Monday"


async def sockets_for(server, *users):
    return [await connect(server, await sign_in(user, server.settings)) for user in users]


def apply_sent(shown: list[dict], fetched_after: list[dict]) -> list[dict]:
    """What the thread page does on message.sent: fetch what is after the last shown, append it."""
    known = {m["id"] for m in shown}
    return shown + [m for m in fetched_after if m["id"] not in known]


def apply_read(shown: list[dict], event: dict) -> list[dict]:
    """What the sender's page does on message.read: its messages up to `up_to` are read then."""
    data = event["data"]
    return [{**m, "read_at": data["read_at"]} if m["mine"] and m["id"] <= data["up_to"] and m["read_at"] is None
            else m for m in shown]


def page_of(page) -> list[dict]:
    return [m.model_dump(mode="json") for m in page.messages]


async def test_a_sent_message_reaches_both_members_and_nobody_else(server):
    patient, doctor = await make_user(Role.PATIENT, name="Pat"), await make_user(Role.DOCTOR, name="Dr Dana")
    stranger, admin = await make_user(Role.PATIENT), await make_user(Role.ADMIN)
    await booked(patient, doctor)
    thread = await service.do_start_thread(patient, ThreadStart(with_user_id=doctor.id), at=T0)
    shown = page_of(await service.read_thread(doctor, thread.id, at=T0))
    to_patient, to_doctor, to_stranger, to_admin = await sockets_for(server, patient, doctor, stranger, admin)

    message = await service.do_send(server.settings, patient, thread.id, MessageIn(text=TEXT), at=T0)
    for socket in (to_patient, to_doctor):
        [received] = await socket.wait_for(1)
        event = received["event"]
        assert event["type"] == "message.sent"
        assert event["actor_id"] == patient.id
        assert event["subject"] == {"kind": "thread", "id": str(thread.id)}
        assert event["data"] == {"thread_id": thread.id, "message_id": message.id}
    for socket, user in ((to_stranger, stranger), (to_admin, admin)):
        assert await socket.until(await sentinel(user.id)) == []

    after = page_of(await service.read_thread(doctor, thread.id, after=shown[-1]["id"] if shown else 0,
                                              at=T0 + timedelta(minutes=1)))
    fresh = page_of(await service.read_thread(doctor, thread.id, at=T0 + timedelta(minutes=2)))
    assert apply_sent(shown, after) == fresh
    assert [m["text"] for m in fresh] == [TEXT]
    for socket in (to_patient, to_doctor, to_stranger, to_admin):
        await socket.close()


async def test_reading_tells_the_sender_and_applying_it_marks_their_messages_read(server):
    patient, doctor = await make_user(Role.PATIENT), await make_user(Role.DOCTOR)
    await booked(patient, doctor)
    thread = await service.do_start_thread(doctor, ThreadStart(with_user_id=patient.id), at=T0)
    for text in ("one", "two"):
        await service.do_send(server.settings, doctor, thread.id, MessageIn(text=text), at=T0)
    shown = page_of(await service.read_thread(doctor, thread.id, at=T0))
    assert [m["read_at"] for m in shown] == [None, None]
    to_doctor, to_patient = await sockets_for(server, doctor, patient)

    read_at = T0 + timedelta(minutes=5)
    await service.read_thread(patient, thread.id, at=read_at)
    for socket in (to_doctor, to_patient):
        [received] = await socket.wait_for(1)
        event = received["event"]
        assert event["type"] == "message.read"
        assert event["actor_id"] == patient.id
        assert event["data"] == {"thread_id": thread.id, "up_to": shown[-1]["id"],
                                 "read_at": read_at.isoformat()}
    fresh = page_of(await service.read_thread(doctor, thread.id, at=read_at))
    assert apply_read(shown, received["event"]) == [
        {**m, "read_at": m["read_at"].replace("Z", "+00:00")} for m in fresh]
    # reading again changes nothing, and says nothing
    await service.read_thread(patient, thread.id, at=read_at + timedelta(minutes=1))
    assert await to_doctor.until(await sentinel(doctor.id)) == [received]
    for socket in (to_doctor, to_patient):
        await socket.close()


async def test_an_office_message_reaches_every_admin_and_a_close_tells_every_member(server):
    carer, admin, second = (await make_user(Role.CARER, name="Cara"), await make_user(Role.ADMIN),
                            await make_user(Role.ADMIN))
    patient = await make_user(Role.PATIENT)
    thread = await service.do_start_thread(carer, ThreadStart(), at=T0)
    sockets = await sockets_for(server, carer, admin, second, patient)
    await service.do_send(server.settings, carer, thread.id, MessageIn(text="Running late"), at=T0)
    for socket in sockets[:3]:
        assert [m["event"]["type"] for m in await socket.wait_for(1)] == ["message.sent"]
    assert await sockets[3].until(await sentinel(patient.id)) == []

    await service.do_close(admin, thread.id, at=T0)
    for socket in sockets[:3]:
        event = (await socket.wait_for(2))[1]["event"]
        assert (event["type"], event["actor_id"], event["data"]) == (
            "message.thread_changed", admin.id, {"thread_id": thread.id, "state": "closed"})
    [summary] = (await service.list_threads(second))[0]
    assert summary.state == "closed"
    for socket in sockets:
        await socket.close()
