"""A recording follows the room: tracks published after the start are in the file, and a
publisher's reconnect keeps feeding its track."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import av

import media

from .helpers import Client, PatternTrack, colour_name, read_frame, relay_config, wait_for


@dataclass
class Track:
    """One stream of the recorded file, decoded."""

    kind: str
    codec: str
    packets: int = 0
    times: list[float] = field(default_factory=list)  # seconds, video frames
    colours: list[str | None] = field(default_factory=list)
    counters: list[int] = field(default_factory=list)


def read_recording(path: Path) -> list[Track]:
    with av.open(str(path)) as container:
        tracks = [Track(s.type, s.codec_context.name) for s in container.streams]
        for packet in container.demux():
            if packet.size == 0:
                continue
            track = tracks[packet.stream.index]
            track.packets += 1
            if track.kind == "video":
                for frame in packet.decode():
                    colour, counter = read_frame(frame)
                    track.times.append(float(frame.pts * frame.time_base))
                    track.colours.append(colour_name(colour))
                    track.counters.append(counter)
    return tracks


def sent_between(track: PatternTrack, start: float, stop: float) -> int:
    return sum(start <= t <= stop for t in track.sent_times)


async def test_a_track_published_after_the_start_is_recorded(tmp_path: Path) -> None:
    relay = media.Relay(relay_config(recordings_dir=tmp_path))
    room = relay.room("share")
    alice, bob = Client("alice", "red"), Client("bob", "blue")
    screen = PatternTrack("green")
    try:
        await alice.join(room)
        await bob.join(room)
        assert await wait_for(lambda: bool(bob.tracks("video")) and len(bob.tracks("video")[0].frames) > 10, 15)
        started = time.monotonic()
        await room.start_recording("share.webm")
        assert await wait_for(lambda: len(bob.tracks("video")[0].frames) > 40, 5)  # ~1 s recorded

        shared = time.monotonic()
        alice.pc.addTrack(screen)
        await alice.renegotiate()

        def screen_frames() -> int:
            return sum(
                len(t.frames) for t in bob.tracks("video", "alice")
                if t.frames and colour_name(t.frames[-1][1][0]) == "green"
            )

        assert await wait_for(lambda: screen_frames() > 60, 15)  # ~2 s of screen share
        stopped = time.monotonic()
        written = await room.stop_recording()
    finally:
        await alice.close()
        await bob.close()
        await relay.close()

    tracks = read_recording(tmp_path / "share.webm")
    videos = [t for t in tracks if t.kind == "video"]
    assert [t.codec for t in videos] == ["vp8", "vp8", "vp8"]
    assert sorted(t.codec for t in tracks if t.kind == "audio") == ["opus", "opus"]
    by_colour = {t.colours[0]: t for t in videos}
    assert sorted(by_colour) == ["blue", "green", "red"]
    assert all(set(t.colours) == {t.colours[0]} for t in videos)
    share = by_colour["green"]
    # the screen share's frames, nearly all of those sent while it was recorded
    expected = sent_between(screen, shared, stopped)
    assert expected - 10 <= len(share.times) <= expected + 1, (len(share.times), expected)
    assert all(b > a for a, b in pairwise(share.counters))
    # placed on the recording's timeline where it started, not at zero
    assert share.times[0] >= shared - started - 0.2, (share.times[0], shared - started)
    assert share.times[-1] <= stopped - started + 0.2
    assert sorted(written.values()) == sorted(t.packets for t in tracks)
    assert len(written) == 5 and all(key.startswith(("alice/", "bob/")) for key in written)


async def test_a_reconnect_keeps_feeding_the_recording(tmp_path: Path) -> None:
    relay = media.Relay(relay_config(recordings_dir=tmp_path))
    room = relay.room("reconnect")
    alice, bob = Client("alice", "red"), Client("bob", "blue")
    alice2 = Client("alice", "green")  # her rebuilt connection; another colour to tell them apart
    try:
        participant = await alice.join(room)
        await bob.join(room)
        assert await wait_for(lambda: bool(bob.tracks("video")) and len(bob.tracks("video")[0].frames) > 10, 15)
        await room.start_recording("reconnect.mkv")
        bob_video = bob.tracks("video")[0]
        assert await wait_for(lambda: len(bob_video.frames) > 40, 5)

        # alice's network changed: a new peer connection, new ICE credentials
        await alice.close()
        reconnected = time.monotonic()
        alice2.participant = participant
        alice2.pc.addTrack(alice2.audio)
        alice2.pc.addTrack(alice2.video)
        await alice2.pc.setLocalDescription(await alice2.pc.createOffer())
        await participant.handle_offer(alice2.pc.localDescription.sdp)
        alice2._pump()

        def green_frames() -> int:
            return sum(colour_name(info[0]) == "green" for _, info in bob_video.frames)

        assert await wait_for(lambda: green_frames() > 60, 15)  # ~2 s after the reconnect
        stopped = time.monotonic()
        written = await room.stop_recording()
    finally:
        for client in (alice, alice2, bob):
            await client.close()
        await relay.close()

    tracks = read_recording(tmp_path / "reconnect.mkv")
    # still one track per participant and kind: the reconnect continued alice's
    assert sorted((t.kind, t.codec) for t in tracks) == [("audio", "opus")] * 2 + [("video", "vp8")] * 2
    (alice_video,) = [t for t in tracks if t.kind == "video" and "blue" not in t.colours]
    first_green = alice_video.colours.index("green")
    assert set(alice_video.colours[:first_green]) == {"red"}
    assert set(alice_video.colours[first_green:]) == {"green"}
    assert first_green > 20  # alice's first connection was recorded too
    expected = sent_between(alice2.video, reconnected, stopped)
    after = len(alice_video.colours) - first_green
    assert expected - 10 <= after <= expected + 1, (after, expected)
    # her new camera's frames follow on the same timeline, in order
    assert all(b > a for a, b in pairwise(alice_video.times))
    assert all(b > a for a, b in pairwise(alice_video.counters[first_green:]))
    # and her audio kept going too
    audio_counts = sorted(t.packets for t in tracks if t.kind == "audio")
    assert audio_counts[0] > 0.8 * audio_counts[1], audio_counts
    assert sorted(written.values()) == sorted(t.packets for t in tracks)
    assert len(written) == 4
