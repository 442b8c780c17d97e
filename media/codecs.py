"""When two negotiated codecs are "the same codec": the one rule the relay uses both to
forward a publisher's payload as-is to a subscriber (``forwarding``) and to keep one
payload type per codec across a BUNDLE group when it renegotiates (``_aiortc_hooks``).

For H.264 the payload format depends on two ``a=fmtp`` parameters (RFC 6184):

* ``packetization-mode`` (absent: 0).  Mode 0 allows single NAL units only; a mode 1
  stream carries STAP-A and FU-A packets a mode 0 receiver does not accept.
* the *profile* of ``profile-level-id`` (absent: ``420010``, Baseline).  The profile is
  ``profile_idc`` and the constraint flags of ``profile_iop`` read together, as
  libwebrtc reads them: ``42e01f`` and ``4d801f`` are both Constrained Baseline, while
  ``42001f`` is Baseline.  The level (the last byte) is not part of the identity: each
  side may send a different level (``level-asymmetry-allowed``), and a browser answers
  with its own.

Other codecs are the same when their MIME type, clock rate and channel count are.
"""

from __future__ import annotations

from typing import NamedTuple

from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters

__all__ = ["CodecKey", "codec_key", "h264_profile", "is_rtx", "media_codecs"]

H264_DEFAULT_PROFILE_LEVEL_ID = "420010"  # RFC 6184 section 8.1, when the parameter is absent

# (profile_idc, profile_iop bit pattern, most significant bit first, "x": either) -> profile,
# the table libwebrtc uses (api/video_codecs/h264_profile_level_id.cc), first match wins.
_H264_PROFILES: tuple[tuple[int, str, str], ...] = (
    (0x42, "x1xx0000", "constrained-baseline"),
    (0x4D, "1xxx0000", "constrained-baseline"),
    (0x58, "11xx0000", "constrained-baseline"),
    (0x42, "x0xx0000", "baseline"),
    (0x58, "10xx0000", "baseline"),
    (0x4D, "0x0x0000", "main"),
    (0x64, "00000000", "high"),
    (0x64, "00001100", "constrained-high"),
    (0xF4, "00000000", "predictive-high-444"),
)


class CodecKey(NamedTuple):
    """What must be equal for a payload to be passed on as-is to another peer."""

    mime_type: str  # lower case, e.g. "video/h264"
    clock_rate: int
    channels: int | None = None
    packetization_mode: str | None = None  # H.264 only
    profile: str | None = None  # H.264 only: see h264_profile


def _iop_matches(pattern: str, iop: int) -> bool:
    return all(bit == "x" or int(bit) == (iop >> (7 - i)) & 1 for i, bit in enumerate(pattern))


def h264_profile(profile_level_id: str | None) -> str:
    """The H.264 profile that ``profile-level-id`` names (level left out).

    A value that is not six hex digits, or whose profile libwebrtc does not know, is its
    own profile (its first four hex digits, lower case): equal only to the same spelling.
    """
    text = (profile_level_id or H264_DEFAULT_PROFILE_LEVEL_ID).strip().lower()
    try:
        idc, iop = int(text[0:2], 16), int(text[2:4], 16)
    except ValueError:
        return text[:4]
    if len(text) != 6:
        return text[:4]
    for profile_idc, pattern, profile in _H264_PROFILES:
        if idc == profile_idc and _iop_matches(pattern, iop):
            return profile
    return text[:4]


def codec_key(codec: RTCRtpCodecParameters | RTCRtpCodecCapability) -> CodecKey:
    """The codec's identity for forwarding and for payload-type numbering (see above)."""
    name = codec.mimeType.lower()
    if name != "video/h264":
        return CodecKey(name, codec.clockRate, codec.channels)
    params = codec.parameters
    mode = str(params.get("packetization-mode", "0")).strip() or "0"
    level_id = params.get("profile-level-id")
    return CodecKey(name, codec.clockRate, codec.channels, mode,
                    h264_profile(None if level_id is None else str(level_id)))


def is_rtx(codec: RTCRtpCodecParameters | RTCRtpCodecCapability) -> bool:
    return codec.mimeType.lower().endswith("/rtx")


def media_codecs(codecs: list[RTCRtpCodecParameters]) -> list[RTCRtpCodecParameters]:
    """The codecs that carry media (RTX left out), in negotiated order."""
    return [c for c in codecs if not is_rtx(c)]
