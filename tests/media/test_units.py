"""Pure functions of the relay: history, RTX, keyframe detection, config, SDP filtering."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensions, HeaderExtensionsMap, RtpPacket, unwrap_rtx

import media
from media.forwarding import (
    PacketHistory,
    h264_is_keyframe_start,
    make_rtx,
    vp8_is_keyframe_start,
)
from media.recording import opus_head, vp8_frame_size
from media.relay import _filter_candidates


def test_history_returns_only_the_packet_with_that_sequence_number() -> None:
    history = PacketHistory(8)
    for seq in range(65530, 65536):
        history.put(seq, bytes([seq & 0xFF]))
    for seq in range(0, 4):  # wraps around 16 bits
        history.put(seq, bytes([seq]))
    assert history.get(3) == b"\x03"
    assert history.get(65535) == b"\xff"
    assert history.get(65530) is None  # overwritten by seq 2 (same slot)
    assert history.get(65531) is None  # overwritten by seq 3
    assert history.get(4) is None  # never sent
    with pytest.raises(ValueError, match="power of two"):
        PacketHistory(100)


def test_make_rtx_round_trips_through_aiortc_unwrap() -> None:
    ext_map = HeaderExtensionsMap()
    ext_map.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
                RTCRtpHeaderExtensionParameters(
                    id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
                ),
            ]
        )
    )
    packet = RtpPacket(payload_type=97, marker=1, sequence_number=4242, timestamp=99, ssrc=1111, payload=b"vp8 payload")
    packet.extensions = HeaderExtensions(mid="3", abs_send_time=123456)
    packet.padding_size = 4
    rtx_bytes = make_rtx(packet.serialize(ext_map), payload_type=98, sequence_number=7, ssrc=2222)
    rtx = RtpPacket.parse(rtx_bytes, ext_map)
    assert (rtx.payload_type, rtx.sequence_number, rtx.ssrc, rtx.marker) == (98, 7, 2222, 1)
    assert rtx.extensions.mid == "3" and rtx.padding_size == 0
    original = unwrap_rtx(rtx, payload_type=97, ssrc=1111)
    assert (original.sequence_number, original.timestamp, original.payload) == (4242, 99, b"vp8 payload")


def test_vp8_keyframe_detection() -> None:
    key = b"\x10" + b"\x00\x00\x00"  # S=1, PID=0, no extension; P bit clear
    inter = b"\x10" + b"\x01\x00\x00"  # P bit set
    continuation = b"\x00" + b"\x00\x00\x00"  # S=0
    extended = bytes([0x90, 0x80, 0x80, 0x01]) + b"\x00\x00"  # X, I, 15-bit picture id
    extended_inter = bytes([0x90, 0x80, 0x80, 0x01]) + b"\x01\x00"
    assert vp8_is_keyframe_start(key)
    assert not vp8_is_keyframe_start(inter)
    assert not vp8_is_keyframe_start(continuation)
    assert vp8_is_keyframe_start(extended)
    assert not vp8_is_keyframe_start(extended_inter)
    assert not vp8_is_keyframe_start(b"\x10")


def test_h264_keyframe_detection() -> None:
    sps, pps, idr, non_idr = b"\x67\x42", b"\x68\xce", b"\x65\x88", b"\x41\x9a"
    stap = b"\x18" + struct.pack("!H", 2) + sps + struct.pack("!H", 2) + pps
    assert h264_is_keyframe_start(idr)
    assert h264_is_keyframe_start(sps)
    assert not h264_is_keyframe_start(non_idr)
    assert h264_is_keyframe_start(stap)
    assert h264_is_keyframe_start(b"\x7c\x85")  # FU-A start of IDR
    assert not h264_is_keyframe_start(b"\x7c\x05")  # FU-A continuation
    assert not h264_is_keyframe_start(b"\x7c\x81")  # FU-A start of non-IDR


def test_vp8_frame_size_and_opus_head() -> None:
    header = b"\x50\x42\x00\x9d\x01\x2a" + struct.pack("<HH", 640, 480)
    assert vp8_frame_size(header) == (640, 480)
    assert vp8_frame_size(b"\x51" + header[1:]) is None  # inter frame
    head = opus_head()
    assert head.startswith(b"OpusHead") and len(head) == 19


def test_config_validation_names_the_bad_value() -> None:
    with pytest.raises(ValueError, match="'not-a-net'"):
        media.RelayConfig(allowed_networks=("not-a-net",))
    with pytest.raises(ValueError, match="'http://x'"):
        media.RelayConfig(ice_servers=(media.IceServer("http://x"),))
    config = media.RelayConfig(allowed_networks=("192.0.2.0/24",), recordings_dir=Path("/tmp"))
    assert config.address_allowed("192.0.2.77")
    assert not config.address_allowed("10.0.0.1")
    assert not config.address_allowed("abcd.local")
    assert media.RelayConfig().address_allowed("10.0.0.1")


def test_candidates_outside_allowed_networks_are_dropped() -> None:
    config = media.RelayConfig(allowed_networks=("192.0.2.0/24",))
    sdp = "\r\n".join([
        "v=0",
        "a=candidate:1 1 udp 2130706431 192.0.2.2 5000 typ host",
        "a=candidate:2 1 udp 2130706431 10.1.2.3 5001 typ host",
        "a=candidate:3 1 udp 2130706431 1f2e.local 5002 typ host",
        "a=end-of-candidates",
    ]) + "\r\n"
    kept = _filter_candidates(sdp, config)
    assert "192.0.2.2" in kept
    assert "10.1.2.3" not in kept and ".local" not in kept
    assert "a=end-of-candidates" in kept


async def test_errors_name_the_problem(tmp_path: Path) -> None:
    relay = media.Relay(media.RelayConfig(recordings_dir=tmp_path))
    room = relay.room("empty")
    try:
        with pytest.raises(media.RelayError, match="not valid SDP|cannot apply offer"):
            await room.join("x", "this is not sdp")
        with pytest.raises(media.RelayError, match="no published tracks"):
            await room.start_recording("a.webm")
        with pytest.raises(media.RelayError, match="is not recording"):
            await room.stop_recording()
    finally:
        await relay.close()


def test_tuning_the_collector_freezes_startup_objects_and_raises_the_young_threshold() -> None:
    import gc

    from media.tuning import GC_THRESHOLDS, tune_garbage_collector

    before = gc.get_threshold()
    try:
        tune_garbage_collector()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
