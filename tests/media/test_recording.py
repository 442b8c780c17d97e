"""Recording writes the forwarded VP8 + Opus, as received, into a Matroska/WebM file."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import av

import media

from .helpers import Client, colour_name, read_frame, relay_config, wait_for


async def test_recording_holds_the_frames_sent_during_the_window(tmp_path: Path) -> None:
    relay = media.Relay(relay_config(recordings_dir=tmp_path))
    room = relay.room("recorded")
    alice, bob = Client("alice", "red"), Client("bob", "blue")
    try:
        await alice.join(room)
        await bob.join(room)
        assert await wait_for(lambda: bool(bob.tracks("video")) and len(bob.tracks("video")[0].frames) > 10, 15)

        started = time.monotonic()
        await room.start_recording("call.webm")
        await asyncio.sleep(3)
        stopped = time.monotonic()
        written = await room.stop_recording()
    finally:
        await alice.close()
        await bob.close()
        await relay.close()

    path = tmp_path / "call.webm"
    sent = {
        name: sum(started <= t <= stopped for t in client.video.sent_times)
        for name, client in (("alice", alice), ("bob", bob))
    }
    audio_sent = sorted(sum(started <= t <= stopped for t in client.audio.sent_times) for client in (alice, bob))
    with av.open(str(path)) as container:
        videos = [s for s in container.streams if s.type == "video"]
        audios = [s for s in container.streams if s.type == "audio"]
        assert [s.codec_context.name for s in videos] == ["vp8", "vp8"]
        assert [s.codec_context.name for s in audios] == ["opus", "opus"]
        frames = {s.index: 0 for s in container.streams}
        colours: dict[int, set[str | None]] = {s.index: set() for s in videos}
        for packet in container.demux():
            if packet.size == 0:
                continue
            frames[packet.stream.index] += 1
            if packet.stream.type == "video":
                for frame in packet.decode():
                    colours[packet.stream.index].add(colour_name(read_frame(frame)[0]))
        video_counts = sorted(frames[s.index] for s in videos)
        audio_counts = [frames[s.index] for s in audios]
    # Each video track loses at most a few frames: the ones before the keyframe the
    # relay requests at start (one round trip, ~1-3 frames), plus the last frame
    # still in the jitter buffer at stop.  Frames are never duplicated.
    for count, expected in zip(video_counts, sorted(sent.values()), strict=True):
        assert expected - 8 <= count <= expected + 1, (video_counts, sent)
    assert sorted(colours.values(), key=sorted) == [{"blue"}, {"red"}], colours
    # Opus: 20 ms frames (~150 in 3 s on an idle machine). Counted against what each side
    # sent in the window, not against the clock: a loaded machine sends fewer. The slack is
    # the frames in flight when recording starts and stops.
    for count, expected in zip(sorted(audio_counts), audio_sent, strict=True):
        assert expected - 10 <= count <= expected + 2, (audio_counts, audio_sent)
    assert sorted(written.values()) == sorted(frames.values())
