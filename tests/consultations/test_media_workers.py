"""Scaled out for real: the web app with CARETRACK_MEDIA_MODE=workers on PostgreSQL and Redis,
two `caretrack media` processes, and aiortc peers signed in as the doctor and the patient
(and a guest, by their seat).
The call is placed on one worker; killing that worker (SIGKILL) sends both clients to the
other, where the patient the doctor admitted skips the waiting room and media flows again."""

from __future__ import annotations

import signal
from datetime import UTC, datetime

import httpx
import pyotp
import websockets

from caretrack.consultations import guests
from caretrack.consultations.models import Admission, GuestInvite, GuestRole
from caretrack.consultations.schemas import GuestInviteCreate, GuestJoin
from caretrack.core.roles import Role
from signalling import protocol as p
from tests.consultations.conftest import make_appointment
from tests.helpers import login, make_user
from tests.media.helpers import colour_name, wait_for
from tests.signalling.conftest import SignalClient


async def sign_in(base_url: str, email: str, totp_secret: str | None = None) -> str:
    """A session cookie (one sign-in per user: a TOTP code is accepted once)."""
    async with httpx.AsyncClient(base_url=base_url, headers={"origin": base_url}) as http:
        response = await login(http, email, totp_secret=totp_secret)
        assert response.status_code == 303 and "/mfa" not in response.headers["location"], response.text[:300]
        return "; ".join(f"{name}={value}" for name, value in http.cookies.items())


async def join(base_url: str, cookie: str, appointment_id: int, *, query: str = "",
               welcome: bool = True) -> SignalClient:
    ws = await websockets.connect(base_url.replace("http", "ws", 1) + "/ws/signal" + query, origin=base_url,
                                  additional_headers={"cookie": cookie}, open_timeout=5, max_size=2**22)
    client = SignalClient(cookie[:12], ws)
    client.start()
    if welcome:
        await client.send({"type": "join", "consultation": str(appointment_id)})
        await client.wait(p.Welcome)
    return client


def flowing(*clients: SignalClient, frames: int = 20) -> bool:
    return all(c.tracks("video") and len(c.tracks("video")[-1].frames) >= frames for c in clients)


async def test_a_killed_media_worker_sends_its_calls_to_another(scaled_out, clients) -> None:
    base_url, workers = scaled_out["url"], scaled_out["workers"]
    async with httpx.AsyncClient() as http:
        ready = (await http.get(base_url + "/readyz")).json()
    assert ready["checks"]["media"] == "2 worker(s)", ready

    secret = pyotp.random_base32()
    doctor = await make_user(Role.DOCTOR, "doc@example.org", name="Dr Dora", totp_secret=secret)
    patient = await make_user(Role.PATIENT, "pat@example.org", name="Pat Patient")
    appointment = await make_appointment(doctor, patient)

    patient_cookie = await sign_in(base_url, "pat@example.org")
    doctor_cookie = await sign_in(base_url, "doc@example.org", secret)
    patient_socket = await join(base_url, patient_cookie, appointment.id)
    host = await join(base_url, doctor_cookie, appointment.id)
    clients += [patient_socket, host]
    assert patient_socket.of(p.Welcome)[0].admitted is False
    await host.wait(p.Lobby, lambda m: [w.participant for w in m.waiting] == [str(patient.id)])
    await host.send({"type": "admit", "participant": str(patient.id)})
    await patient_socket.wait(p.Admitted)
    await host.publish("red")
    await patient_socket.publish("blue")
    assert await wait_for(lambda: flowing(host, patient_socket), 30)
    assert {colour_name(i[0]) for _, i in patient_socket.tracks("video")[0].frames} == {"red"}
    assert await Admission.filter(appointment_id=appointment.id, user_id=patient.id).count() == 1

    hosting = [name for name, w in workers.items() if await w.consultations() == 1]
    assert len(hosting) == 1, hosting
    (spare,) = set(workers) - set(hosting)
    await workers[hosting[0]].stop(signal.SIGKILL)

    # the web process notices the broken worker connection: both clients are told to reconnect
    for client in (host, patient_socket):
        code, reason = await client.wait_closed(15)
        assert code == 1012 and "reconnecting" in reason
    # ... and do, as call.js does: the call is placed on the surviving worker
    host2 = await join(base_url, doctor_cookie, appointment.id)
    patient2 = await join(base_url, patient_cookie, appointment.id)
    clients += [host2, patient2]
    assert patient2.of(p.Welcome)[0].admitted is True  # admitted before: no waiting room
    assert await workers[spare].consultations() == 1
    await host2.publish("green")
    await patient2.publish("blue")
    assert await wait_for(lambda: flowing(host2, patient2), 30)
    assert {colour_name(i[0]) for _, i in patient2.tracks("video")[0].frames} == {"green"}

    # chat written by the worker lands in the database, readable through the web app
    await patient2.send({"type": "chat", "text": "still here"})
    await host2.wait(p.ChatPosted)
    async with httpx.AsyncClient(base_url=base_url, headers={"cookie": doctor_cookie}) as http:
        history = (await http.get(f"/api/v1/consultations/{appointment.id}/chat")).json()
    assert [m["text"] for m in history["messages"]] == ["still here"]


async def test_a_stopped_worker_leaves_the_directory_and_readiness_says_so(scaled_out) -> None:
    base_url, workers = scaled_out["url"], scaled_out["workers"]
    for worker in workers.values():
        err = await worker.stop()
        assert "Traceback" not in err, err
    async with httpx.AsyncClient() as http:
        response = await http.get(base_url + "/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["media"] == "no workers"
    assert any("caretrack media" in problem for problem in body["problems"])


async def test_a_guest_joins_through_the_web_app_to_a_media_worker(scaled_out, clients) -> None:
    """The guest's seat (a cookie, no account) is checked by the web process and vouched for
    to the worker, whose hooks keep the admission on the invitation."""
    base_url, settings = scaled_out["url"], scaled_out["settings"]
    secret = pyotp.random_base32()
    doctor = await make_user(Role.DOCTOR, "doc@example.org", name="Dr Dora", totp_secret=secret)
    patient = await make_user(Role.PATIENT, "pat@example.org", name="Pat Patient")
    appointment = await make_appointment(doctor, patient)
    invite, link = await guests.do_create_guest_invite(
        settings, doctor, appointment.id, GuestInviteCreate(role=GuestRole.FAMILY, label="Daughter"),
        at=datetime.now(UTC))
    _, seat = await guests.do_redeem_guest_invite(GuestJoin(token=link.split("#", 1)[1], name="Gina"), user=None,
                                                  at=datetime.now(UTC))
    guest_cookie = f"{guests.seat_cookie_name(settings)}={seat}"

    without_seat = await join(base_url, guest_cookie, appointment.id, welcome=False)
    clients.append(without_seat)
    assert (await without_seat.wait_closed())[0] == 4401  # the seat is only read for ?seat=guest
    host = await join(base_url, await sign_in(base_url, "doc@example.org", secret), appointment.id)
    guest = await join(base_url, guest_cookie, appointment.id, query="?seat=guest")
    clients += [host, guest]
    welcome = guest.of(p.Welcome)[0]
    assert (welcome.participant, welcome.name, welcome.role, welcome.admitted) == (
        f"guest:{invite.id}", "Gina (family member)", "guest", False)
    await host.wait(p.Lobby, lambda m: [w.name for w in m.waiting] == ["Gina (family member)"])
    await host.send({"type": "admit", "participant": f"guest:{invite.id}"})
    await guest.wait(p.Admitted)
    await guest.send({"type": "chat", "text": "hello"})
    refused = await guest.wait(p.Error, lambda e: e.about == "chat")
    assert refused.code == 4403 and "not post" in refused.message
    assert (await GuestInvite.get(id=invite.id)).admitted_at is not None
