"""One rule for "the same codec", used by forwarding and by renegotiation alike."""

from __future__ import annotations

from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from media import _aiortc_hooks, codecs, forwarding
from media.codecs import codec_key, h264_profile


def h264(payload_type: int = 102, **parameters: str | int) -> RTCRtpCodecParameters:
    return RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=payload_type,
                                 parameters=dict(parameters))


def test_h264_profiles_are_read_as_libwebrtc_reads_them() -> None:
    assert h264_profile("42e01f") == "constrained-baseline"
    assert h264_profile("42E034") == "constrained-baseline"
    assert h264_profile("4d801f") == "constrained-baseline"  # Main with constraint_set0
    assert h264_profile("42001f") == "baseline"
    assert h264_profile("4d001f") == "main"
    assert h264_profile("64001f") == "high"
    assert h264_profile("640c1f") == "constrained-high"
    assert h264_profile(None) == "baseline"  # RFC 6184: absent means 420010
    assert h264_profile("7a001f") == "7a00"  # unknown: only the same spelling matches
    assert h264_profile("nonsense") == "nons"


def test_h264_is_the_same_codec_only_with_the_same_packetization_mode_and_profile() -> None:
    base = codec_key(h264(**{"packetization-mode": 1, "profile-level-id": "42e01f"}))
    # the level is not part of the identity (browsers answer with their own level)
    assert codec_key(h264(**{"packetization-mode": "1", "profile-level-id": "42e034"})) == base
    assert codec_key(h264(**{"packetization-mode": 1, "profile-level-id": "4d801f"})) == base
    # the payload type and the other parameters are not part of it either
    assert codec_key(h264(127, **{"packetization-mode": 1, "profile-level-id": "42e01f",
                                  "level-asymmetry-allowed": 1})) == base
    # packetization mode 0 (single NAL units) is another payload format
    assert codec_key(h264(**{"packetization-mode": 0, "profile-level-id": "42e01f"})) != base
    assert codec_key(h264(**{"profile-level-id": "42e01f"})) == codec_key(
        h264(**{"packetization-mode": 0, "profile-level-id": "42e01f"}))
    # another profile is another codec: Baseline is not Constrained Baseline, High is not Main
    assert codec_key(h264(**{"packetization-mode": 1, "profile-level-id": "42001f"})) != base
    assert codec_key(h264(**{"packetization-mode": 1})) != base
    assert codec_key(h264(**{"packetization-mode": 1, "profile-level-id": "64001f"})) != codec_key(
        h264(**{"packetization-mode": 1, "profile-level-id": "4d001f"}))


def test_other_codecs_are_the_same_by_name_clock_rate_and_channels() -> None:
    vp8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
    assert codec_key(vp8) == codec_key(RTCRtpCodecParameters(mimeType="video/vp8", clockRate=90000,
                                                             payloadType=120, parameters={"x": 1}))
    opus = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)
    assert codec_key(opus) == codec_key(RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000,
                                                              channels=2, payloadType=109))
    assert codec_key(opus) != codec_key(RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000,
                                                              channels=1, payloadType=111))
    assert codec_key(opus) != codec_key(vp8)


def test_forwarding_and_renegotiation_use_the_one_rule() -> None:
    assert forwarding.codec_key is codecs.codec_key
    assert _aiortc_hooks.codec_key is codecs.codec_key
    assert not hasattr(_aiortc_hooks, "_codec_key")
