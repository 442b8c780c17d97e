"""Attendance recorded through real signalling: the web app's /ws/signal on the embedded
default (both databases), and scaled out, where `caretrack media` processes write the join
and leave facts and one of them is killed mid-call. Either way the doctor's End completes
the appointment the patient joined, before its nominal start."""

from __future__ import annotations

import signal

import pyotp

from caretrack.booking.attendance import Attendance
from caretrack.booking.models import Appointment, AppointmentStatus
from caretrack.core.outbox.models import Event
from caretrack.core.roles import Role
from caretrack.payments import ledger
from signalling import protocol as p
from tests.consultations.conftest import make_appointment
from tests.consultations.test_media_workers import join, sign_in
from tests.helpers import make_user


async def stays(appointment_id: int) -> list[tuple[str, str, bool]]:
    """(principal, role, still in the call) per stay, in order."""
    rows = await Attendance.filter(appointment_id=appointment_id, admitted=True).order_by("id")
    return [(r.principal, r.role, r.left_at is None) for r in rows]


async def people():
    secret = pyotp.random_base32()
    doctor = await make_user(Role.DOCTOR, "doc@example.org", name="Dr Dora", totp_secret=secret)
    patient = await make_user(Role.PATIENT, "pat@example.org", name="Pat Patient")
    return doctor, secret, patient


async def test_stays_follow_the_sockets_and_the_end_completes(live_server, clients) -> None:
    base_url = live_server.url
    doctor, secret, patient = await people()
    appointment = await make_appointment(doctor, patient)  # starts in 5 minutes
    d, pt = str(doctor.id), str(patient.id)
    patient_cookie = await sign_in(base_url, "pat@example.org")
    doctor_cookie = await sign_in(base_url, "doc@example.org", secret)

    waiting = await join(base_url, patient_cookie, appointment.id)
    host = await join(base_url, doctor_cookie, appointment.id)
    clients += [waiting, host]
    await host.wait(p.Lobby, lambda m: [w.participant for w in m.waiting] == [pt])
    assert await stays(appointment.id) == [(d, "host", True)]  # waiting is not being in the call
    assert await Attendance.filter(appointment_id=appointment.id, admitted=False).values_list("principal", "role") \
        == [(pt, "patient")], "but the patient came: an arrival is kept"
    await host.send({"type": "admit", "participant": pt})
    await waiting.wait(p.Admitted)
    assert await stays(appointment.id) == [(d, "host", True), (pt, "patient", True)]

    await waiting.send({"type": "leave"})
    assert (await waiting.wait_closed())[0] == 1000  # closed once the server has let them go
    assert await stays(appointment.id) == [(d, "host", True), (pt, "patient", False)]
    back = await join(base_url, patient_cookie, appointment.id)
    clients.append(back)
    assert back.of(p.Welcome)[0].admitted is True
    assert (await stays(appointment.id))[2:] == [(pt, "patient", True)]

    await host.send({"type": "end"})
    for client in (host, back):
        await client.wait(p.Ended)
    assert await stays(appointment.id) == [(d, "host", False), (pt, "patient", False), (pt, "patient", False)]
    done = await Appointment.get(id=appointment.id)
    assert done.status == AppointmentStatus.COMPLETED and done.completed_at < done.starts_at
    assert await ledger.balance(ledger.earnings(doctor.id)) == 8


async def test_a_killed_media_worker_leaves_no_stay_open_for_ever(scaled_out, clients) -> None:
    base_url, workers = scaled_out["url"], scaled_out["workers"]
    doctor, secret, patient = await people()
    appointment = await make_appointment(doctor, patient)
    d, pt = str(doctor.id), str(patient.id)
    patient_cookie = await sign_in(base_url, "pat@example.org")
    doctor_cookie = await sign_in(base_url, "doc@example.org", secret)
    patient_socket = await join(base_url, patient_cookie, appointment.id)
    host = await join(base_url, doctor_cookie, appointment.id)
    clients += [patient_socket, host]
    await host.wait(p.Lobby, lambda m: m.waiting)
    await host.send({"type": "admit", "participant": pt})
    await patient_socket.wait(p.Admitted)
    assert await stays(appointment.id) == [(d, "host", True), (pt, "patient", True)]  # written by the worker

    (hosting,) = [name for name, w in workers.items() if await w.consultations() == 1]
    await workers[hosting].stop(signal.SIGKILL)  # no leave is ever told for these stays
    for client in (host, patient_socket):
        assert (await client.wait_closed(15))[0] == 1012
    host2 = await join(base_url, doctor_cookie, appointment.id)
    patient2 = await join(base_url, patient_cookie, appointment.id)
    clients += [host2, patient2]
    # on the other worker: the dead one's stays end as the same people arrive again
    assert await stays(appointment.id) == [(d, "host", False), (pt, "patient", False), (d, "host", True),
                                           (pt, "patient", True)]

    await host2.send({"type": "end"})
    await patient2.wait(p.Ended)
    assert [open_ for *_, open_ in await stays(appointment.id)] == [False] * 4
    assert (await Appointment.get(id=appointment.id)).status == AppointmentStatus.COMPLETED
    assert await Event.filter(type="booking.completed").count() == 1
