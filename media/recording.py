"""Write received, still-encoded media to a WebM/Matroska file (no re-encoding).

RTP packets are depacketised with aiortc's own depayloaders and reassembled into
frames by aiortc's ``JitterBuffer``; each frame becomes an ``av.Packet`` with a
pts in the RTP clock of its track and is muxed by PyAV.  Output streams are
created from unopened template codec contexts (``add_stream_from_template``),
so PyAV never opens an encoder either.
"""

from __future__ import annotations

import io
import logging
import struct
import time
from fractions import Fraction
from pathlib import Path

import av
from aiortc.codecs import depayload
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from .forwarding import Publication

logger = logging.getLogger(__name__)

# How long to wait for every video track's first keyframe (which carries the
# picture size) before writing the file header with a default size.
HEADER_DEADLINE = 3.0
DEFAULT_SIZE = (640, 480)

_MUXER_CODECS = {"video/vp8": "libvpx", "video/h264": "libx264", "audio/opus": "libopus"}


def opus_head(channels: int = 2, sample_rate: int = 48000) -> bytes:
    """OpusHead identification header (RFC 7845 section 5.1), Matroska CodecPrivate."""
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, 312, sample_rate, 0, 0)


def vp8_frame_size(frame: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 keyframe header (RFC 6386 section 9.1)."""
    if len(frame) < 10 or frame[0] & 0x01 or frame[3:6] != b"\x9d\x01\x2a":
        return None
    width, height = struct.unpack_from("<HH", frame, 6)
    return width & 0x3FFF, height & 0x3FFF


def is_key_frame(codec_name: str, frame: bytes) -> bool:
    if codec_name == "video/vp8":
        return bool(frame) and not frame[0] & 0x01
    if codec_name == "video/h264":
        # Annex B output of aiortc's depayloader: look for an IDR or SPS NAL unit
        return b"\x00\x00\x01\x65" in frame or b"\x00\x00\x01\x67" in frame
    return True


class _Track:
    """Reassembles one publication's RTP packets into timestamped encoded frames."""

    def __init__(self, publication: Publication, started_at: float) -> None:
        self.publication = publication
        self.kind = publication.kind
        self.codec_name = publication.codec.mimeType.lower()
        self.clock_rate = publication.codec.clockRate
        self.time_base = Fraction(1, self.clock_rate)
        self.size: tuple[int, int] | None = None
        self.stream: av.stream.Stream | None = None
        self.frames = 0
        self._started_at = started_at
        self._buffer = (
            JitterBuffer(capacity=512, is_video=True)
            if self.kind == "video"
            else JitterBuffer(capacity=16)
        )
        self._origin: int | None = None  # pts offset, in clock-rate units
        self._first_ts: int | None = None
        self._last_ts = 0
        self._wraps = 0
        self._last_pts: int | None = None
        self._seen_key = self.kind != "video"

    def add(self, packet: RtpPacket, codec: RTCRtpCodecParameters) -> tuple[bytes, int, bool] | None:
        if codec.mimeType.lower() != self.codec_name:
            return None
        copy = RtpPacket(
            payload_type=packet.payload_type,
            marker=packet.marker,
            sequence_number=packet.sequence_number,
            timestamp=packet.timestamp,
            ssrc=packet.ssrc,
        )
        try:
            copy._data = depayload(codec, packet.payload) if packet.payload else b""  # type: ignore[attr-defined]
        except ValueError:
            return None
        _, frame = self._buffer.add(copy)
        if frame is None:
            return None
        key = is_key_frame(self.codec_name, frame.data)
        if not self._seen_key:
            if not key:
                return None
            self._seen_key = True
        if key and self.size is None and self.codec_name == "video/vp8":
            self.size = vp8_frame_size(frame.data)
        pts = self._pts(frame.timestamp)
        if self._last_pts is not None and pts <= self._last_pts:
            return None
        self._last_pts = pts
        return frame.data, pts, key

    def _pts(self, timestamp: int) -> int:
        if self._first_ts is None:
            self._first_ts = self._last_ts = timestamp
            # place the track's first frame at its arrival time in the recording
            self._origin = int((time.monotonic() - self._started_at) * self.clock_rate)
        elif timestamp < self._last_ts and self._last_ts - timestamp > 1 << 31:
            self._wraps += 1
        self._last_ts = timestamp
        return self._origin + timestamp + (self._wraps << 32) - self._first_ts


class Recorder:
    """Records a fixed set of publications into one file until :meth:`close`."""

    def __init__(self, path: Path, publications: list[Publication]) -> None:
        self.path = Path(path)
        self._started_at = time.monotonic()
        self._tracks = [
            _Track(p, self._started_at)
            for p in publications
            if p.codec.mimeType.lower() in _MUXER_CODECS
        ]
        self._container: av.container.OutputContainer | None = None
        self._pending: list[tuple[_Track, bytes, int, bool]] = []
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for track in self._tracks:
            track.publication.sinks.append(self._sink(track))

    @property
    def publications(self) -> list[Publication]:
        return [t.publication for t in self._tracks]

    def frame_counts(self) -> dict[str, int]:
        return {f"{t.publication.participant_id}/{t.kind}/{t.publication.track_id}": t.frames for t in self._tracks}

    def _sink(self, track: _Track):  # noqa: ANN202 - closure over one track
        def sink(packet: RtpPacket, codec: RTCRtpCodecParameters) -> None:
            if self._closed:
                return
            frame = track.add(packet, codec)
            if frame is not None:
                self._write(track, *frame)

        track.sink = sink  # type: ignore[attr-defined]
        return sink

    def _write(self, track: _Track, data: bytes, pts: int, key: bool) -> None:
        if self._container is None:
            self._pending.append((track, data, pts, key))
            ready = all(t.size is not None for t in self._tracks if t.kind == "video")
            if not ready and time.monotonic() - self._started_at < HEADER_DEADLINE:
                return
            self._open()
            pending, self._pending = self._pending, []
            for item in pending:
                self._mux(*item)
            return
        self._mux(track, data, pts, key)

    def _open(self) -> None:
        fmt = "webm" if self.path.suffix.lower() == ".webm" else "matroska"
        # Unopened codec contexts in a throwaway container serve as templates, so
        # the real container copies codec parameters without opening any encoder.
        templates = av.open(io.BytesIO(), "w", format="matroska")
        container = av.open(str(self.path), "w", format=fmt)
        try:
            for track in self._tracks:
                name = _MUXER_CODECS[track.codec_name]
                if track.kind == "video":
                    width, height = track.size or DEFAULT_SIZE
                    template = templates.add_stream(name, width=width, height=height)
                else:
                    template = templates.add_stream(name, rate=track.clock_rate)
                    template.codec_context.extradata = opus_head()
                stream = container.add_stream_from_template(template)
                stream.time_base = track.time_base
                track.stream = stream
        except Exception:
            container.close()
            raise
        finally:
            templates.close()
        self._container = container

    def _mux(self, track: _Track, data: bytes, pts: int, key: bool) -> None:
        packet = av.Packet(data)
        packet.stream = track.stream
        packet.time_base = track.time_base
        packet.pts = packet.dts = pts
        packet.is_keyframe = key
        try:
            self._container.mux(packet)
        except av.FFmpegError as exc:
            logger.warning("recording %s: dropped a %s frame: %s", self.path, track.kind, exc)
            return
        track.frames += 1

    def close(self) -> dict[str, int]:
        """Detach from the publications, write the trailer; returns frames written per track."""
        if self._closed:
            return self.frame_counts()
        self._closed = True
        for track in self._tracks:
            sink = getattr(track, "sink", None)
            if sink in track.publication.sinks:
                track.publication.sinks.remove(sink)
        if self._container is None and self._pending:
            self._open()
            for item in self._pending:
                self._mux(*item)
        if self._container is not None:
            self._container.close()
        return self.frame_counts()
