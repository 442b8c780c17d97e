"""A consultation end to end: real aiortc peers (doctor and patient) signalling through
the real endpoint on hypercorn, media through the real relay over 192.0.2.2."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import av

from signalling import protocol as p
from tests.media.helpers import colour_name, read_frame, wait_for

from .conftest import SignalClient, SignalServer, join


def counters(received) -> list[int]:
    return [info[1] for _, info in received.frames]


async def admitted_call(server: SignalServer, clients: list[SignalClient], consultation: str
                        ) -> tuple[SignalClient, SignalClient]:
    """The patient waits, the host sees them in the lobby and admits them; both publish
    and each decodes the other's camera and audio."""
    patient = await join(server, "pat", consultation)
    clients.append(patient)
    welcome = patient.of(p.Welcome)[0]
    assert ((welcome.role, welcome.admitted, welcome.participant, welcome.name)
            == ("patient", False, "pat", "Pat Patient"))
    assert (await patient.wait(p.Waiting)).host_present is False

    host = await join(server, "doc", consultation)
    clients.append(host)
    lobby = await host.wait(p.Lobby, lambda m: m.waiting)
    assert [(w.participant, w.name, w.role) for w in lobby.waiting] == [("pat", "Pat Patient", "patient")]
    await patient.wait(p.Waiting, lambda m: m.host_present)
    # nobody reaches media before being admitted
    assert "pat" not in server.relay.room(consultation).participants

    await host.publish("red")
    await host.send({"type": "admit", "participant": "pat"})
    await patient.wait(p.Admitted)
    await host.wait(p.Lobby, lambda m: m.waiting == [])
    roster = await host.wait(p.Participants, lambda m: len(m.participants) == 2)
    assert sorted((i.participant, i.role) for i in roster.participants) == [("doc", "host"), ("pat", "patient")]
    await patient.publish("blue")

    def flowing() -> bool:
        return all(
            len(c.tracks("video")) == 1 and len(c.tracks("video")[0].frames) >= 30
            and len(c.tracks("audio")) == 1 and len(c.tracks("audio")[0].frames) >= 50
            for c in (host, patient)
        )

    assert await wait_for(flowing, timeout=20), [(c.user, r.kind, r.publisher, len(r.frames))
                                                for c in (host, patient) for r in c.received]
    return host, patient


async def test_admitted_patient_and_host_see_and_hear_each_other(server: SignalServer, clients) -> None:
    host, patient = await admitted_call(server, clients, "c-call")
    for me, other, colour in ((host, "pat", "blue"), (patient, "doc", "red")):
        (video,) = me.tracks("video")
        assert video.publisher == other
        assert me.tracks("audio")[0].publisher == other
        assert {colour_name(info[0]) for _, info in video.frames} == {colour}
        seen = counters(video)
        assert all(b > a for a, b in pairwise(seen)), seen
    # the ICE servers for the browser come with the welcome
    assert host.of(p.Welcome)[0].ice_servers == []

    # media state and screen share reach the other side
    await patient.send({"type": "media_state", "audio": False, "video": True})
    state = await host.wait(p.MediaStateChanged)
    assert (state.participant, state.audio, state.video) == ("pat", False, True)
    await host.send({"type": "screen_share", "active": True, "track": "screen-track-1"})
    shared = await patient.wait(p.ScreenShareChanged)
    assert (shared.participant, shared.active, shared.track) == ("doc", True, "screen-track-1")
    assert patient.of(p.MediaStateChanged) == []  # not echoed to the sender

    # the patient leaves: the host's relay connection drops the patient's tracks
    offers = host.offers_answered
    since = host.mark()
    await patient.send({"type": "leave"})
    assert (await patient.wait_closed())[0] == 1000
    roster = await host.wait(p.Participants, lambda m: [i.participant for i in m.participants] == ["doc"],
                             since=since)
    assert (roster.participants[0].screen, roster.participants[0].screen_track) == (True, "screen-track-1")
    assert await wait_for(lambda: host.offers_answered > offers, 10)
    assert list(server.relay.room("c-call").participants) == ["doc"]


async def test_chat_reaches_the_other_side_and_the_hook(server: SignalServer, clients) -> None:
    patient = await join(server, "pat", "c-chat")
    host = await join(server, "doc", "c-chat")
    clients += [patient, host]
    await host.send({"type": "admit", "participant": "pat"})
    await patient.wait(p.Admitted)
    await patient.send({"type": "chat", "text": "My knee still hurts."})
    for client in (host, patient):  # the sender gets it back with its stored id: its receipt
        posted = await client.wait(p.ChatPosted)
        assert (posted.id, posted.at, posted.participant, posted.name, posted.text) == (
            "msg-1", "2030-01-02T03:04:05+00:00", "pat", "Pat Patient", "My knee still hurts.")
    assert server.hooks.chats == [("c-chat", "pat", "My knee still hurts.")]

    server.hooks.fail_chat = True
    await host.send({"type": "chat", "text": "lost?"})
    error = await host.wait(p.Error, lambda e: e.about == "chat")
    assert error.code == 4500 and "nothing was changed" in error.message
    # a sentinel: the host's next message reaches the patient after anything the lost one caused
    server.hooks.fail_chat = False
    await host.send({"type": "chat", "text": "Noted."})
    await patient.wait(p.ChatPosted, lambda m: m.text == "Noted.")
    assert [m.text for m in patient.of(p.ChatPosted)] == ["My knee still hurts.", "Noted."]


async def test_recording_needs_both_consents_and_holds_both_calls_frames(server: SignalServer, clients) -> None:
    host, patient = await admitted_call(server, clients, "c-rec")
    await host.send({"type": "recording_consent", "granted": True})
    state = await patient.wait(p.Recording, lambda m: m.consents.host)
    assert state.on is False and state.consents.patient is False
    # a sentinel: once the host's next message is handled, so is its consent
    await host.send({"type": "chat", "text": "Shall we record?"})
    await patient.wait(p.ChatPosted, lambda m: m.text == "Shall we record?")
    assert server.hooks.started == [] and not server.relay.room("c-rec").recording

    await patient.send({"type": "recording_consent", "granted": True})
    for client in (host, patient):
        await client.wait(p.Recording, lambda m: m.on)
    ((consultation, path),) = server.hooks.started
    assert consultation == "c-rec" and path.parent == server.recordings / "c-rec"

    # Record until each side has received ~3 s more video (by frames, not by the clock:
    # a loaded machine slows everything down alike).
    def video_frames(client) -> int:
        return sum(len(track.frames) for track in client.tracks("video"))

    start = [video_frames(client) for client in (host, patient)]
    assert await wait_for(lambda: all(video_frames(c) - s >= 90 for c, s in zip((host, patient), start, strict=True)),
                          timeout=30)

    mark = host.mark()
    await patient.send({"type": "recording_consent", "granted": False})  # withdrawn: stops at once
    await host.wait(p.Recording, lambda m: not m.on and not m.consents.patient, since=mark)
    assert server.hooks.stopped == [("c-rec", path)]
    assert not server.relay.room("c-rec").recording
    assert server.hooks.consents == [("c-rec", "doc", "host", True), ("c-rec", "pat", "patient", True),
                                     ("c-rec", "pat", "patient", False)]
    with av.open(str(path)) as container:
        videos = [s for s in container.streams if s.type == "video"]
        assert [s.codec_context.name for s in videos] == ["vp8", "vp8"]
        assert sorted(s.codec_context.name for s in container.streams if s.type == "audio") == ["opus", "opus"]
        colours: dict[int, set] = {s.index: set() for s in videos}
        decoded = {s.index: 0 for s in videos}
        for packet in container.demux(*videos):
            for frame in packet.decode():
                decoded[packet.stream.index] += 1
                colours[packet.stream.index].add(colour_name(read_frame(frame)[0]))
    assert sorted(colours.values(), key=sorted) == [{"blue"}, {"red"}], colours
    assert all(count >= 60 for count in decoded.values()), decoded  # ~3 s at 30 fps each

    # consent again, then the call ends: recording stops with it
    mark = host.mark()
    await patient.send({"type": "recording_consent", "granted": True})
    await host.wait(p.Recording, lambda m: m.on, since=mark)
    assert len(server.hooks.started) == 2
    # the new recording has written frames (it starts at a keyframe): ending now leaves a file
    room = server.relay.room("c-rec")
    assert await wait_for(lambda: sum(room.recording_frames().values()) > 0, timeout=30)
    await host.send({"type": "end"})
    for client in (host, patient):
        assert (await client.wait(p.Ended)).reason == "Dr Ada Host ended the consultation"
        assert (await client.wait_closed())[0] == 1000
    assert [s[1] for s in server.hooks.stopped] == [path, server.hooks.started[1][1]]
    assert Path(server.hooks.started[1][1]).stat().st_size > 0


async def test_end_closes_for_everyone_and_nobody_rejoins(server: SignalServer, clients) -> None:
    patient = await join(server, "pat", "c-end")
    host = await join(server, "doc", "c-end")
    guest = await join(server, "gus", "c-end")
    clients += [patient, host, guest]
    await host.send({"type": "admit", "participant": "pat"})
    await patient.wait(p.Admitted)
    await patient.send({"type": "end"})  # only the host ends it
    assert (await patient.wait(p.Error, lambda e: e.about == "end")).code == 4403
    await host.send({"type": "end"})
    for client in (patient, host, guest):  # the waiting guest is told too
        await client.wait(p.Ended)
        assert (await client.wait_closed())[0] == 1000
    assert server.hooks.ended == [("c-end", "doc")]
    assert "c-end" not in server.service.consultations and "c-end" not in server.relay.rooms
    again = await join_refused(server, "doc", "c-end")
    assert again == (4409, "this consultation has ended")


async def join_refused(server: SignalServer, user: str, consultation: str) -> tuple[int, str]:
    from .conftest import open_socket

    client = await open_socket(server, user)
    try:
        await client.send({"type": "join", "consultation": consultation})
        return await client.wait_closed()
    finally:
        await client.close()


async def test_a_second_socket_replaces_the_first_and_keeps_the_seat(server: SignalServer, clients) -> None:
    host, patient = await admitted_call(server, clients, "c-reconnect")
    # the patient's network changed: a new socket (and a new peer connection) while the
    # old socket still looks open
    again = await join(server, "pat", "c-reconnect")
    clients.append(again)
    assert (await patient.wait_closed())[0] == 4000
    assert again.of(p.Welcome)[0].admitted is True  # no second trip through the waiting room
    assert again.of(p.Waiting) == []
    await again.publish("green")

    def green_at_host() -> bool:
        video = host.tracks("video", "pat")
        return any(t.frames and colour_name(t.frames[-1][1][0]) == "green" for t in video)

    assert await wait_for(green_at_host, 15), [(t.publisher, len(t.frames)) for t in host.tracks("video")]
    assert await wait_for(
        lambda: bool(again.tracks("video", "doc")) and len(again.tracks("video", "doc")[0].frames) > 10, 15)
    assert colour_name(again.tracks("video", "doc")[0].frames[-1][1][0]) == "red"
    assert len(server.relay.room("c-reconnect").participants) == 2
    roster = host.of(p.Participants)[-1]
    assert sorted(i.participant for i in roster.participants) == ["doc", "pat"]
