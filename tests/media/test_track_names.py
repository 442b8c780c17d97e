"""A publication is named by the track id the client put in its SDP (``a=msid``), also when
the client's ``a=msid-semantic`` leaves its stream out, as Chromium does for a screen share:
the others' pages can then tell which of a participant's videos is the screen."""

from __future__ import annotations

import re
from pathlib import Path

from aiortc import RTCConfiguration, RTCPeerConnection

import media
from tests.media.helpers import PatternTrack, relay_config


async def test_publications_keep_the_clients_track_ids(tmp_path: Path) -> None:
    relay = media.Relay(relay_config(recordings_dir=tmp_path))
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    camera, screen = PatternTrack("red"), PatternTrack("blue")
    try:
        pc.addTrack(camera)
        pc.addTrack(screen)
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        assert re.search(r"a=msid-semantic: ?WMS \*", sdp)
        chromium_like = re.sub(r"a=msid-semantic: ?WMS \*", "a=msid-semantic: WMS another-stream", sdp)
        participant = await relay.room("names").join("pat", chromium_like)
        assert sorted(p.track_id for p in participant.publications.values()) == sorted([camera.id, screen.id])
    finally:
        await pc.close()
        await relay.close()
