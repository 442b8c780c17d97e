"""A call lives only as long as its caller's sign-in: deactivation, logout and session expiry
close the caller's /ws/signal socket with a reason the call page shows, take them out of the
relay room (the others are told), and a reconnection is refused. In the embedded default,
through another web process (Redis carries the change), and through media workers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import websockets

from caretrack.accounts.models import Session
from caretrack.accounts.service.admin import do_set_active
from caretrack.accounts.service.signin import do_logout
from caretrack.accounts.sessions import digest, now
from caretrack.consultations import guests
from caretrack.consultations.schemas import GuestInviteCreate, GuestJoin
from caretrack.core.roles import Role
from caretrack.realtime.sockets import DEACTIVATED, SESSION_EXPIRED, SIGNED_OUT
from caretrack.site import calls
from signalling import protocol as p
from tests.consultations.conftest import make_appointment
from tests.media.helpers import wait_for
from tests.realtime.conftest import FAST, Server, make_user, serve, sign_in, start_web_process, stop_web_process
from tests.signalling.conftest import SignalClient

REFUSED = (p.CLOSE_UNAUTHENTICATED, "sign in to join a consultation")


async def open_call(base_url: str, cookie: str) -> SignalClient:
    ws = await websockets.connect(base_url.replace("http", "ws", 1) + "/ws/signal", origin=base_url,
                                  additional_headers={"cookie": cookie}, open_timeout=5, max_size=2**22)
    client = SignalClient(cookie[-8:], ws)
    client.start()
    return client


async def join(base_url: str, cookie: str, appointment_id: int) -> SignalClient:
    client = await open_call(base_url, cookie)
    await client.send({"type": "join", "consultation": str(appointment_id)})
    await client.wait(p.Welcome)
    return client


async def session_of(cookie: str) -> Session:
    return await Session.get(id=digest(cookie.split("=", 1)[1]))


def relay_participants(server: Server, appointment_id: int) -> set[str]:
    room = server.app.state.media_relay.rooms.get(str(appointment_id))
    return set(room.participants) if room is not None else set()


@pytest.fixture
async def server(settings) -> AsyncIterator[Server]:
    """The app with its embedded relay; the periodic sweep is 30 s away (FAST), so what closes
    a socket here is the change itself or the moment its session lapses."""
    running = await serve(settings, FAST)
    yield running
    await running.stop()


async def admitted_call(server: Server, clients: list[SignalClient]):
    doctor, patient = await make_user(Role.DOCTOR), await make_user(Role.PATIENT, name="Pat Patient")
    appointment = await make_appointment(doctor, patient)
    doctor_cookie, patient_cookie = await sign_in(doctor, server.settings), await sign_in(patient, server.settings)
    on_call = await join(server.url, patient_cookie, appointment.id)
    host = await join(server.url, doctor_cookie, appointment.id)
    clients += [on_call, host]
    await host.wait(p.Lobby, lambda m: [w.participant for w in m.waiting] == [str(patient.id)])
    await host.send({"type": "admit", "participant": str(patient.id)})
    await on_call.wait(p.Admitted)
    return doctor, patient, appointment, host, on_call, patient_cookie


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_deactivating_the_patient_ends_their_call_and_their_media(server, clients):
    doctor, patient, appointment, host, on_call, cookie = await admitted_call(server, clients)
    await host.publish("red")
    await on_call.publish("blue")
    assert await wait_for(lambda: all(c.tracks("video") and len(c.tracks("video")[0].frames) >= 10
                                      for c in (host, on_call)), 30)
    assert relay_participants(server, appointment.id) == {str(doctor.id), str(patient.id)}

    admin = await make_user(Role.ADMIN)
    await do_set_active(admin, patient.id, False, None)

    assert await on_call.wait_closed(5) == (p.CLOSE_REFUSED, DEACTIVATED)
    await host.wait(p.Participants, lambda m: [i.participant for i in m.participants] == [str(doctor.id)],
                    timeout=5)
    assert relay_participants(server, appointment.id) == {str(doctor.id)}
    assert not [prefix for prefix in server.app.state.media_relay.peer_connections.values()
                if prefix.endswith(f"/{patient.id}]")]
    again = await open_call(server.url, cookie)
    clients.append(again)
    assert await again.wait_closed(5) == REFUSED
    assert not host.closed.done()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_guest_whose_link_is_revoked_is_taken_out_of_the_call(server, clients, monkeypatch):
    monkeypatch.setattr(calls, "GUEST_RECHECK_SECONDS", 0.05)
    doctor, patient, appointment, host, on_call, _ = await admitted_call(server, clients)
    invite, link = await guests.do_create_guest_invite(
        server.settings, doctor, appointment.id, GuestInviteCreate(role="interpreter", label="Interpreter"), at=now())
    _, seat = await guests.do_redeem_guest_invite(GuestJoin(token=link.split("#", 1)[1], name="Ana"), user=None,
                                                 at=now())
    ws = await websockets.connect(server.url.replace("http", "ws", 1) + "/ws/signal?seat=guest", origin=server.url,
                                  additional_headers={"cookie": f"{guests.seat_cookie_name(server.settings)}={seat}"},
                                  open_timeout=5, max_size=2**22)
    guest = SignalClient("guest", ws)
    guest.start()
    clients.append(guest)
    await guest.send({"type": "join", "consultation": str(appointment.id)})
    await guest.wait(p.Welcome)
    who = f"guest:{invite.id}"
    await host.wait(p.Lobby, lambda m: [w.participant for w in m.waiting] == [who])
    await host.send({"type": "admit", "participant": who})
    await guest.wait(p.Admitted)
    await host.wait(p.Participants, lambda m: who in [i.participant for i in m.participants])

    await guests.do_revoke_guest_invite(server.settings, doctor, appointment.id, invite.id, at=now())
    assert await guest.wait_closed() == (4403, calls.WITHDRAWN)
    await host.wait(p.Participants, lambda m: who not in [i.participant for i in m.participants])


async def test_logging_out_ends_the_call_of_that_session_only(server, clients):
    doctor, patient, appointment, host, on_call, cookie = await admitted_call(server, clients)
    other_cookie = await sign_in(patient, server.settings)  # the patient's phone, not in the call
    waiting_on_phone = await open_call(server.url, other_cookie)
    clients.append(waiting_on_phone)

    await do_logout(await session_of(cookie), None)

    assert await on_call.wait_closed(5) == (p.CLOSE_UNAUTHENTICATED, SIGNED_OUT)
    await host.wait(p.Participants, lambda m: [i.participant for i in m.participants] == [str(doctor.id)],
                    timeout=5)
    again = await open_call(server.url, cookie)
    clients.append(again)
    assert await again.wait_closed(5) == REFUSED
    # the other session's socket still works: it joins the call
    await waiting_on_phone.send({"type": "join", "consultation": str(appointment.id)})
    assert (await waiting_on_phone.wait(p.Welcome)).participant == str(patient.id)


async def test_a_session_that_expires_ends_the_call_when_it_lapses(server, clients):
    doctor, patient = await make_user(Role.DOCTOR), await make_user(Role.PATIENT)
    appointment = await make_appointment(doctor, patient)
    cookie = await sign_in(patient, server.settings)
    session = await session_of(cookie)
    await Session.filter(id=session.id).update(expires_at=now() + timedelta(seconds=2))
    waiting = await join(server.url, cookie, appointment.id)  # nobody calls notify_auth_changed
    clients.append(waiting)
    assert await waiting.wait_closed(5) == (p.CLOSE_UNAUTHENTICATED, SESSION_EXPIRED)
    again = await open_call(server.url, cookie)
    clients.append(again)
    assert await again.wait_closed(5) == REFUSED


async def test_a_call_keeps_its_session_from_idling_out(settings, clients):
    """An hour-long consultation is activity: the call renews its session before the idle
    timeout, as a request would (the absolute timeout still ends it, above)."""
    running = await serve(settings.replace(session_idle_minutes=1), FAST)
    try:
        doctor, patient = await make_user(Role.DOCTOR), await make_user(Role.PATIENT)
        appointment = await make_appointment(doctor, patient)
        cookie = await sign_in(patient, running.settings)
        session = await session_of(cookie)
        idle_since = now() - timedelta(seconds=40)  # 20 s before the 1-minute idle timeout
        await Session.filter(id=session.id).update(last_seen_at=idle_since)
        waiting = await join(running.url, cookie, appointment.id)
        clients.append(waiting)

        async def renewed() -> bool:
            return (await Session.get(id=session.id)).last_seen_at > idle_since + timedelta(seconds=30)

        for _ in range(100):
            if await renewed():
                break
            await asyncio.sleep(0.05)
        assert await renewed()
        assert not waiting.closed.done()
    finally:
        await running.stop()


@pytest.mark.redis
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_deactivation_in_one_web_process_ends_a_call_held_by_another(settings, redis_url, clients):
    local = await serve(settings.replace(redis_url=redis_url), FAST)
    remote = await start_web_process(settings, redis_url)
    try:
        doctor, patient = await make_user(Role.DOCTOR), await make_user(Role.PATIENT)
        appointment = await make_appointment(doctor, patient)
        waiting = await join(remote.url, await sign_in(patient, local.settings), appointment.id)
        clients.append(waiting)
        await do_set_active(await make_user(Role.ADMIN), patient.id, False, None)  # through this process's bus
        assert await waiting.wait_closed(5) == (p.CLOSE_REFUSED, DEACTIVATED)
    finally:
        stop_web_process(remote)
        await local.stop()


@pytest.mark.redis
async def test_through_media_workers_a_deactivated_patient_leaves_the_call_on_the_worker(scaled_out, clients):
    """The web process holds the browser's socket and proxies it to a `caretrack media`
    process: closing it there takes the patient out of the worker's room."""
    base_url, settings = scaled_out["url"], scaled_out["settings"]
    doctor, patient = await make_user(Role.DOCTOR), await make_user(Role.PATIENT)
    appointment = await make_appointment(doctor, patient)
    patient_cookie = await sign_in(patient, settings)
    on_call = await join(base_url, patient_cookie, appointment.id)
    host = await join(base_url, await sign_in(doctor, settings), appointment.id)
    clients += [on_call, host]
    await host.wait(p.Lobby, lambda m: [w.participant for w in m.waiting] == [str(patient.id)])
    await host.send({"type": "admit", "participant": str(patient.id)})
    await host.wait(p.Participants, lambda m: len(m.participants) == 2)

    await do_set_active(await make_user(Role.ADMIN), patient.id, False, None)

    assert await on_call.wait_closed(5) == (p.CLOSE_REFUSED, DEACTIVATED)
    # the worker (another process) saw the patient leave and told the doctor
    await host.wait(p.Participants, lambda m: [i.participant for i in m.participants] == [str(doctor.id)],
                    timeout=5)
    again = await open_call(base_url, patient_cookie)
    clients.append(again)
    assert await again.wait_closed(5) == REFUSED
