"""Write received, still-encoded media to a WebM/Matroska file (no re-encoding).

RTP packets are depacketised with aiortc's own depayloaders and reassembled into
frames by aiortc's ``JitterBuffer``; each frame becomes an ``av.Packet`` with a
pts in the RTP clock of its track and is muxed by PyAV.  Output streams are
created from unopened template codec contexts (``add_stream_from_template``),
so PyAV never opens an encoder either.

Tracks come and go while a room records (a screen share, a participant who
joins later, a reconnect that replaces a participant's publications), but a
Matroska file lists its tracks once, in a header written before the first
frame.  So the recording is written in two steps:

* live, each *slot* goes to its own Matroska part file in a hidden directory
  next to the output (``.<name>.<random>.parts/<n>.mkv``), whose header is
  written at that slot's first keyframe (so it also knows the picture size);
* at :meth:`Recorder.close`, the parts are remuxed into the output file, one
  track per slot, packets copied in time order (nothing decoded), and the
  part directory is removed.

The output file therefore only exists once the recording stopped, and
stopping takes time in proportion to the recording's size (it runs in a worker
thread).  If the process dies first, the part directory keeps every slot as a
playable Matroska file.

A *slot* is one participant's track of one kind and codec.  A publication that
appears during the recording takes the first slot of its participant, kind and
codec whose publication has ended (a reconnect, a camera turned back on), and
continues that track after the gap; otherwise it gets a new slot (a screen
share, someone who joined after the start).  Every track is placed on the
recording's timeline at the moment its frames arrived.
"""

from __future__ import annotations

import asyncio
import heapq
import io
import logging
import shutil
import struct
import tempfile
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from aiortc.codecs import depayload
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from .forwarding import Publication, RecordingSink

logger = logging.getLogger(__name__)

# Picture size written in a track header when the keyframe does not tell (H.264:
# decoders read the real size from the SPS).
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


class RecordingError(Exception):
    """The parts of a recording could not be joined into its file."""


class _Slot:
    """One track of the recording: the frames of one publication at a time,
    reassembled from RTP and written to this slot's part file."""

    def __init__(self, index: int, publication: Publication, parts: Path, started_at: float) -> None:
        self.index = index
        self.participant_id = publication.participant_id
        self.kind = publication.kind
        self.codec_name = publication.codec.mimeType.lower()
        self.clock_rate = publication.codec.clockRate
        self.time_base = Fraction(1, self.clock_rate)
        self.key = f"{publication.participant_id}/{publication.kind}/{publication.track_id}"
        self.part_path = parts / f"{index}.mkv"
        self.size: tuple[int, int] | None = None
        self.frames = 0
        self.publication = publication
        self._started_at = started_at
        self._container: av.container.OutputContainer | None = None
        self._stream: av.stream.Stream | None = None
        self._last_pts: int | None = None
        self.attach(publication)

    def takes(self, publication: Publication) -> bool:
        """True when ``publication`` may continue this slot (its own one has ended)."""
        return (
            self.publication.closed
            and publication.participant_id == self.participant_id
            and publication.kind == self.kind
            and publication.codec.mimeType.lower() == self.codec_name
            and publication.codec.clockRate == self.clock_rate
        )

    def attach(self, publication: Publication) -> None:
        """Start taking frames from ``publication`` (a new RTP source: new sequence
        numbers and timestamps, so a fresh jitter buffer and timestamp origin)."""
        self.publication = publication
        self._buffer = (
            JitterBuffer(capacity=512, is_video=True)
            if self.kind == "video"
            else JitterBuffer(capacity=16)
        )
        self._origin = 0  # pts of the source's first frame, in clock-rate units
        self._first_ts: int | None = None
        self._last_ts = 0
        self._wraps = 0
        self._seen_key = self.kind != "video"

    def add(self, packet: RtpPacket, codec: RTCRtpCodecParameters) -> bool:
        """Take one RTP packet of the current publication and write the frame it
        completes; True when that frame was dropped for want of a first keyframe."""
        if codec.mimeType.lower() != self.codec_name:
            return False
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
            return False
        _, frame = self._buffer.add(copy)
        if frame is None:
            return False
        key = is_key_frame(self.codec_name, frame.data)
        if not self._seen_key:
            if not key:
                return True
            self._seen_key = True
        if key and self.size is None and self.codec_name == "video/vp8":
            self.size = vp8_frame_size(frame.data)
        pts = self._pts(frame.timestamp)
        if self._last_pts is None or pts > self._last_pts:
            self._write(frame.data, pts, key)
        return False

    def _pts(self, timestamp: int) -> int:
        if self._first_ts is None:
            self._first_ts = self._last_ts = timestamp
            # place the source's first frame at its arrival time in the recording,
            # after whatever an earlier source of this slot wrote
            arrival = int((time.monotonic() - self._started_at) * self.clock_rate)
            self._origin = arrival if self._last_pts is None else max(arrival, self._last_pts + 1)
        elif timestamp < self._last_ts and self._last_ts - timestamp > 1 << 31:
            self._wraps += 1
        self._last_ts = timestamp
        return self._origin + timestamp + (self._wraps << 32) - self._first_ts

    def _write(self, data: bytes, pts: int, key: bool) -> None:
        if self._container is None or self._stream is None:
            self._open()
        container, stream = self._container, self._stream
        if container is None or stream is None:  # pragma: no cover - _open set both or raised
            raise RecordingError(f"recording {self.part_path}: the part file did not open")
        packet = av.Packet(data)
        packet.stream = stream
        packet.time_base = self.time_base
        packet.pts = packet.dts = pts
        packet.is_keyframe = key
        try:
            container.mux(packet)
        except av.FFmpegError as exc:
            logger.warning("recording %s: dropped a %s frame: %s", self.part_path, self.kind, exc)
            return
        self._last_pts = pts
        self.frames += 1

    def _open(self) -> None:
        # An unopened codec context in a throwaway container serves as template, so
        # the part file copies codec parameters without opening any encoder.
        templates = av.open(io.BytesIO(), "w", format="matroska")
        container = av.open(str(self.part_path), "w", format="matroska")
        try:
            name = _MUXER_CODECS[self.codec_name]
            if self.kind == "video":
                width, height = self.size or DEFAULT_SIZE
                template = templates.add_stream(name, width=width, height=height)
            else:
                template = templates.add_stream(name, rate=self.clock_rate)
                template.codec_context.extradata = opus_head()
            self._stream = container.add_stream_from_template(template)
            self._stream.time_base = self.time_base
        except Exception:
            container.close()
            raise
        finally:
            templates.close()
        self._container = container

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


class Recorder:
    """Records publications into one file until :meth:`close`; :meth:`add` takes
    publications that appear while it records (see the module docstring)."""

    def __init__(self, path: Path, publications: list[Publication]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.parts = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".parts", dir=self.path.parent))
        self._started_at = time.monotonic()
        self._slots: list[_Slot] = []
        self._sinks: dict[_Slot, RecordingSink] = {}
        self._tasks: set[asyncio.Task[bool]] = set()
        self._written: dict[str, int] | None = None
        self._closed = False
        for publication in publications:
            self.add(publication)

    @property
    def publications(self) -> list[Publication]:
        """The publication each slot takes its frames from now (or last did)."""
        return [slot.publication for slot in self._slots]

    def frame_counts(self) -> dict[str, int]:
        """Frames per slot, keyed ``participant/kind/track id`` of the slot's first
        publication (a reconnect's frames count under the track it continues)."""
        if self._written is not None:
            return dict(self._written)
        return {slot.key: slot.frames for slot in self._slots}

    def add(self, publication: Publication) -> bool:
        """Record ``publication`` too; False when it already is, or its codec cannot be."""
        if self._closed or publication.closed or any(s.publication is publication for s in self._slots):
            return False
        if publication.codec.mimeType.lower() not in _MUXER_CODECS:
            logger.info("recording %s: %r has codec %s, not recorded", self.path, publication,
                        publication.codec.mimeType)
            return False
        slot = next((s for s in self._slots if s.takes(publication)), None)
        if slot is None:
            slot = _Slot(len(self._slots), publication, self.parts, self._started_at)
            self._slots.append(slot)
        else:
            self._detach(slot)
            slot.attach(publication)
        sink = self._sinks[slot] = self._sink(slot, publication)
        publication.sinks.append(sink)
        return True

    def _sink(self, slot: _Slot, publication: Publication) -> RecordingSink:
        def sink(packet: RtpPacket, codec: RTCRtpCodecParameters) -> None:
            if self._closed or slot.publication is not publication:
                return
            if slot.add(packet, codec):
                # a source's frames are useless until its first keyframe: ask for one
                # (the publication rate-limits the requests)
                task = asyncio.ensure_future(publication.request_keyframe())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

        return sink

    def _detach(self, slot: _Slot) -> None:
        sink = self._sinks.pop(slot, None)
        if sink in slot.publication.sinks:
            slot.publication.sinks.remove(sink)

    async def close(self) -> dict[str, int]:
        """Stop taking frames, join the parts into the file; returns frames written per slot."""
        if self._closed:
            return self.frame_counts()
        self._closed = True
        for slot in self._slots:
            self._detach(slot)
            slot.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._written = await asyncio.to_thread(self._join_parts)
        return self.frame_counts()

    def _join_parts(self) -> dict[str, int]:
        written = {slot.key: 0 for slot in self._slots}
        slots = [slot for slot in self._slots if slot.frames]
        if not slots:
            logger.warning("recording %s: no frame was received, no file written", self.path)
            shutil.rmtree(self.parts, ignore_errors=True)
            return written
        fmt = "webm" if self.path.suffix.lower() == ".webm" else "matroska"
        inputs: list[av.container.InputContainer] = []
        try:
            inputs = [av.open(str(slot.part_path)) for slot in slots]
            with av.open(str(self.path), "w", format=fmt) as output:
                streams = [output.add_stream_from_template(i.streams[0]) for i in inputs]
                for index, packet in heapq.merge(*map(_packets, range(len(inputs)), inputs), key=_time):
                    packet.stream = streams[index]
                    output.mux(packet)
                    written[slots[index].key] += 1
        except (av.FFmpegError, OSError) as exc:
            raise RecordingError(
                f"recording {self.path}: joining its parts failed ({exc}); they are kept in {self.parts}"
            ) from exc
        finally:
            for container in inputs:
                container.close()
        shutil.rmtree(self.parts, ignore_errors=True)
        return written


def _packets(index: int, container: av.container.InputContainer) -> Iterator[tuple[int, av.Packet[Any]]]:
    for packet in container.demux(container.streams[0]):
        if packet.size == 0:  # the demuxer's end-of-stream flush packet
            continue
        if packet.dts is None:
            packet.dts = packet.pts
        yield index, packet


def _time(item: tuple[int, av.Packet[Any]]) -> Fraction:
    packet = item[1]
    # _packets gives every packet a dts
    return (packet.dts or 0) * packet.time_base
