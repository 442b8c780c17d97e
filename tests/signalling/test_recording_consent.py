"""Recording needs the consent of everyone in the call, guests included: real aiortc peers
(doctor, patient, guest) through the real endpoint and relay."""

from __future__ import annotations

from signalling import protocol as p
from tests.media.helpers import wait_for

from .conftest import SignalServer, join
from .test_call import admitted_call


def names(message: p.Recording) -> list[str]:
    return [person.name for person in message.missing]


async def test_a_guest_must_consent_too_and_a_new_guest_stops_the_recording(server: SignalServer, clients) -> None:
    host, patient = await admitted_call(server, clients, "c-guest-rec")
    room = server.relay.room("c-guest-rec")
    await host.send({"type": "recording_consent", "granted": True})
    await patient.send({"type": "recording_consent", "granted": True})
    for client in (host, patient):
        on = await client.wait(p.Recording, lambda m: m.on)
        assert names(on) == []
    ((_, first),) = server.hooks.started

    # a guest arrives: waiting, they are not in the call and the recording goes on
    guest = await join(server, "gus", "c-guest-rec")
    clients.append(guest)
    await host.wait(p.Lobby, lambda m: [w.participant for w in m.waiting] == ["gus"])
    assert room.recording and guest.of(p.Recording) == []

    # admitted without having consented: the recording stops at once, and everyone is told who it waits for
    marks = {client.user: client.mark() for client in (host, patient, guest)}
    await host.send({"type": "admit", "participant": "gus"})
    await guest.wait(p.Admitted)
    for client in (host, patient, guest):
        stopped = await client.wait(p.Recording, lambda m: not m.on, since=marks[client.user])
        assert names(stopped) == ["Gus Guest"]
        assert stopped.consents.host and stopped.consents.patient
    assert server.hooks.stopped == [("c-guest-rec", first)] and not room.recording
    await guest.publish("green")
    # the guest's media is connected before anything else happens to them (a leave while the
    # connection is still being set up would race aiortc's own start-up)
    assert await wait_for(lambda: any(len(r.frames) >= 5 for r in host.tracks("video", "gus")), timeout=20)

    # the guest consents: recording starts again, with all three
    marks = {client.user: client.mark() for client in (host, patient, guest)}
    await guest.send({"type": "recording_consent", "granted": True})
    for client in (host, patient, guest):
        await client.wait(p.Recording, lambda m: m.on and m.missing == [], since=marks[client.user])
    assert len(server.hooks.started) == 2 and room.recording
    assert ("c-guest-rec", "gus", "guest", True) in server.hooks.consents

    # the guest withdraws: it stops again
    mark = patient.mark()
    await guest.send({"type": "recording_consent", "granted": False})
    stopped = await patient.wait(p.Recording, lambda m: not m.on, since=mark)
    assert names(stopped) == ["Gus Guest"] and not room.recording
    assert [path for _, path in server.hooks.stopped] == [first, server.hooks.started[1][1]]

    # the guest who would not consent leaves: everyone left has consented, so it records again
    mark = patient.mark()
    await guest.send({"type": "leave"})
    await guest.wait_closed()
    await patient.wait(p.Recording, lambda m: m.on and m.missing == [], since=mark)
    assert len(server.hooks.started) == 3 and room.recording
