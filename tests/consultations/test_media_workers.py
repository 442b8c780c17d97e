"""Scaled out for real: the web app with CARETRACK_MEDIA_MODE=workers on PostgreSQL and Redis,
two `caretrack media` processes, and aiortc peers signed in as the doctor and the patient.
The call is placed on one worker; killing that worker (SIGKILL) sends both clients to the
other, where the patient the doctor admitted skips the waiting room and media flows again."""

from __future__ import annotations

import signal

import httpx
import pyotp
import websockets

from caretrack.consultations.models import Admission
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


async def join(base_url: str, cookie: str, appointment_id: int) -> SignalClient:
    ws = await websockets.connect(base_url.replace("http", "ws", 1) + "/ws/signal", origin=base_url,
                                  additional_headers={"cookie": cookie}, open_timeout=5, max_size=2**22)
    client = SignalClient(cookie[:12], ws)
    client.start()
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
