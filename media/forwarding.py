"""RTP-level forwarding: one publisher track fanned out to subscriber senders.

No media is ever decoded or encoded here.  A :class:`Publication` receives the
publisher's RTP packets (through ``_aiortc_hooks.intercept_rtp``), and each
:class:`Subscription` rewrites SSRC, payload type, sequence number, timestamp
and header extensions for one subscriber and sends the packet on that
subscriber's DTLS transport.  RTCP from subscribers is handled here too:
PLI/FIR go to the publisher, NACKs are answered from a per-subscription packet
history, REMB estimates are combined and clamped before reaching the publisher.
"""

from __future__ import annotations

import logging
import random
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiortc import RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    AnyRtcpPacket,
    HeaderExtensionsMap,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtpPacket,
    pack_remb_fci,
    unpack_remb_fci,
    unwrap_rtx,
)

from . import _aiortc_hooks as hooks
from .codecs import CodecKey, codec_key, is_rtx, media_codecs

logger = logging.getLogger(__name__)

NTP_EPOCH_OFFSET = 2208988800
KEYFRAME_REQUEST_INTERVAL = 0.3  # seconds between PLIs sent to one publisher
KEYFRAME_RETRY_INTERVAL = 1.0  # re-ask while a new subscriber still waits for one
REMB_INTERVAL = 1.0  # seconds between REMB packets to a publisher (unless it drops)

RecordingSink = Callable[[RtpPacket, RTCRtpCodecParameters], None]


def ntp_now() -> int:
    """Current time as a 64-bit NTP timestamp."""
    now = time.time() + NTP_EPOCH_OFFSET
    return int(now * (1 << 32))


# -- keyframe detection -----------------------------------------------------


def vp8_is_keyframe_start(payload: bytes) -> bool:
    """True for the first packet of a VP8 keyframe (RFC 7741 sections 4.2 and 4.3)."""
    if len(payload) < 2:
        return False
    first = payload[0]
    if not first & 0x10 or first & 0x07:  # S bit set and partition 0
        return False
    pos = 1
    if first & 0x80:  # X: extension byte follows
        ext = payload[1]
        pos = 2
        if ext & 0x80:  # I: picture id, 7 or 15 bits
            if len(payload) <= pos:
                return False
            pos += 2 if payload[pos] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            pos += 1
        if ext & 0x30:  # T or K: TID/KEYIDX
            pos += 1
    return len(payload) > pos and not payload[pos] & 0x01  # P bit clear: keyframe


def h264_is_keyframe_start(payload: bytes) -> bool:
    """True when the packet starts an IDR picture or carries SPS (RFC 6184)."""
    if not payload:
        return False
    nal_type = payload[0] & 0x1F
    if nal_type in (5, 7):
        return True
    if nal_type == 24:  # STAP-A: 16-bit size, then NAL unit, repeated
        pos = 1
        while pos + 2 < len(payload):
            size = (payload[pos] << 8) | payload[pos + 1]
            if payload[pos + 2] & 0x1F in (5, 7):
                return True
            pos += 2 + size
        return False
    if nal_type == 28 and len(payload) > 1:  # FU-A: start bit and inner type
        return bool(payload[1] & 0x80) and payload[1] & 0x1F in (5, 7)
    return False


def is_keyframe_start(codec_name: str, payload: bytes) -> bool:
    if codec_name == "video/vp8":
        return vp8_is_keyframe_start(payload)
    if codec_name == "video/h264":
        return h264_is_keyframe_start(payload)
    return True


# -- packet history ---------------------------------------------------------


class PacketHistory:
    """Ring buffer of sent RTP packets (serialised, unencrypted), by sequence number."""

    def __init__(self, size: int) -> None:
        if size <= 0 or size & (size - 1):
            raise ValueError(f"PacketHistory size must be a power of two, got {size}")
        self._mask = size - 1
        self._seqs: list[int] = [-1] * size
        self._data: list[bytes | None] = [None] * size

    def put(self, sequence_number: int, data: bytes) -> None:
        index = sequence_number & self._mask
        self._seqs[index] = sequence_number
        self._data[index] = data

    def get(self, sequence_number: int) -> bytes | None:
        index = sequence_number & self._mask
        if self._seqs[index] != sequence_number:
            return None
        return self._data[index]


def rtp_header_length(data: bytes) -> int:
    length = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10:
        length += 4 + 4 * ((data[length + 2] << 8) | data[length + 3])
    return length


def make_rtx(data: bytes, payload_type: int, sequence_number: int, ssrc: int) -> bytes:
    """Wrap a serialised RTP packet for retransmission (RFC 4588): new PT/seq/SSRC, OSN."""
    header_length = rtp_header_length(data)
    end = len(data)
    first = data[0]
    if first & 0x20:  # drop padding, clear the P bit
        end -= data[-1]
        first &= ~0x20
    header = bytearray(data[:header_length])
    header[0] = first
    header[1] = (data[1] & 0x80) | payload_type
    struct.pack_into("!H", header, 2, sequence_number)
    struct.pack_into("!L", header, 8, ssrc)
    return bytes(header) + data[2:4] + data[header_length:end]


# -- publication / subscription ---------------------------------------------


@dataclass
class ForwardingStats:
    packets_in: int = 0
    packets_out: int = 0
    keyframe_requests: int = 0
    nacks_answered: int = 0
    nacks_missed: int = 0


class Publication:
    """A track one participant sends to the relay."""

    def __init__(
        self,
        participant_id: str,
        transceiver: RTCRtpTransceiver,
        track_id: str,
        config_max_bitrate: int,
    ) -> None:
        self.participant_id = participant_id
        self.transceiver = transceiver
        self.receiver: RTCRtpReceiver = transceiver.receiver
        self.kind: str = transceiver.kind
        self.track_id = track_id
        self.subscriptions: list[Subscription] = []
        self.sinks: list[RecordingSink] = []
        self.stats = ForwardingStats()
        self.closed = False
        self.media_ssrc: int | None = None
        self._max_bitrate = config_max_bitrate
        self._codecs: dict[int, RTCRtpCodecParameters] = {}
        self._nack = hooks.NackGenerator() if self.kind == "video" else None
        self._last_keyframe_request = 0.0
        self._remb: dict[Subscription, int] = {}
        self._last_remb_sent: tuple[float, int] = (0.0, 0)
        self.refresh_codecs()
        hooks.intercept_rtp_now(self.receiver, self.handle_rtp)

    def __repr__(self) -> str:
        return f"Publication({self.participant_id}/{self.kind}/{self.track_id})"

    @property
    def codec(self) -> RTCRtpCodecParameters:
        """The codec the publisher sends with (first one negotiated)."""
        return media_codecs(list(self._codecs.values()))[0]

    def refresh_codecs(self) -> None:
        """Re-read payload types after a (re)negotiation."""
        self._codecs = {c.payloadType: c for c in hooks.negotiated_codecs(self.transceiver)
                        if c.payloadType is not None}

    def close(self) -> None:
        self.closed = True
        self.subscriptions.clear()
        self.sinks.clear()

    # RTP from the publisher: synchronous, called from the socket's receive callback

    def handle_rtp(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        if self.closed:
            return
        codec = self._codecs.get(packet.payload_type)
        if codec is None:
            return
        hooks.receiver_stream_statistics(self.receiver, packet.ssrc, codec.clockRate).add(
            packet
        )
        if is_rtx(codec):
            original_ssrc = hooks.receiver_rtx_ssrcs(self.receiver).get(packet.ssrc)
            apt = codec.parameters.get("apt")
            if original_ssrc is None or apt not in self._codecs or len(packet.payload) < 2:
                return
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)
            codec = self._codecs[apt]
        elif self._nack is not None and self._nack.add(packet):
            self._send_nack(packet.ssrc, sorted(self._nack.missing))

        self.media_ssrc = packet.ssrc
        self.stats.packets_in += 1
        for sink in self.sinks:
            sink(packet, codec)
        if not self.subscriptions:
            return
        ntp = ntp_now()
        abs_send_time = (ntp >> 14) & 0x00FFFFFF
        key = codec_key(codec)
        for subscription in list(self.subscriptions):
            subscription.forward(packet, key, ntp, abs_send_time)

    # RTCP towards the publisher

    def _send_nack(self, media_ssrc: int, lost: list[int]) -> None:
        ssrc = hooks.receiver_rtcp_ssrc(self.receiver)
        if ssrc is None:
            return
        nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=ssrc, media_ssrc=media_ssrc)
        nack.lost = lost
        hooks.receiver_send_rtcp_now(self.receiver, nack)

    async def request_keyframe(self, force: bool = False) -> bool:
        """Send a PLI to the publisher, at most once per KEYFRAME_REQUEST_INTERVAL."""
        return self.request_keyframe_now(force)

    def request_keyframe_now(self, force: bool = False) -> bool:
        """:meth:`request_keyframe` without awaiting (for the RTP path)."""
        if self.kind != "video" or self.media_ssrc is None or self.closed:
            return False
        now = time.monotonic()
        if not force and now - self._last_keyframe_request < KEYFRAME_REQUEST_INTERVAL:
            return False
        ssrc = hooks.receiver_rtcp_ssrc(self.receiver)
        if ssrc is None:
            return False
        self._last_keyframe_request = now
        self.stats.keyframe_requests += 1
        pli = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=ssrc, media_ssrc=self.media_ssrc)
        hooks.receiver_send_rtcp_now(self.receiver, pli)
        return True

    async def update_remb(self, subscription: Subscription, bitrate: int | None) -> None:
        """Record one subscriber's estimate; pass the lowest (clamped) one upstream."""
        if bitrate is None:
            self._remb.pop(subscription, None)
        else:
            self._remb[subscription] = bitrate
        if not self._remb or self.media_ssrc is None:
            return
        target = min(min(self._remb.values()), self._max_bitrate)
        now = time.monotonic()
        last_time, last_value = self._last_remb_sent
        if now - last_time < REMB_INTERVAL and target >= last_value * 0.9:
            return
        ssrc = hooks.receiver_rtcp_ssrc(self.receiver)
        if ssrc is None:
            return
        self._last_remb_sent = (now, target)
        remb = RtcpPsfbPacket(
            fmt=RTCP_PSFB_APP,
            ssrc=ssrc,
            media_ssrc=0,
            fci=pack_remb_fci(target, [self.media_ssrc]),
        )
        await hooks.receiver_send_rtcp(self.receiver, remb)


class Subscription:
    """One publication forwarded to one subscriber through a sendonly transceiver."""

    def __init__(
        self,
        publication: Publication,
        subscriber_id: str,
        transceiver: RTCRtpTransceiver,
        history_size: int,
    ) -> None:
        self.publication = publication
        self.subscriber_id = subscriber_id
        self.transceiver = transceiver
        self.sender: RTCRtpSender = transceiver.sender
        self.history = PacketHistory(history_size)
        self.stats = ForwardingStats()
        self.closed = False
        self._ssrc, self._rtx_ssrc = hooks.sender_ssrcs(self.sender)
        self._ready = False
        self._payload_types: dict[CodecKey, int] = {}
        self._rtx_payload_type: int | None = None
        self._ext_map = HeaderExtensionsMap()  # the negotiated one once ready
        self._mid: str | None = None
        self._last_keyframe_ask = 0.0
        # sequence / timestamp rewriting
        self._source_ssrc: int | None = None
        self._seq_offset = 0
        self._ts_offset = 0
        self._last_seq: int | None = None
        self._last_ts = 0
        self._last_ts_time = 0.0
        self._seq_start = random.randint(0, 0x7FFF)  # lower half, as aiortc does
        self._rtx_seq = random.randint(0, 0x7FFF)
        hooks.intercept_rtcp(self.sender, self._handle_rtcp)

    def __repr__(self) -> str:
        return f"Subscription({self.publication!r} -> {self.subscriber_id})"

    def negotiated(self) -> None:
        """Apply the payload types the subscriber accepted in the last negotiation."""
        codecs = hooks.negotiated_codecs(self.transceiver)
        self._payload_types = {
            codec_key(c): c.payloadType for c in codecs if not is_rtx(c) and c.payloadType is not None
        }
        main = media_codecs(codecs)
        self._rtx_payload_type = None
        if main:
            for c in codecs:
                if is_rtx(c) and c.parameters.get("apt") == main[0].payloadType:
                    self._rtx_payload_type = c.payloadType
        self._mid = self.transceiver.mid

    def close(self) -> None:
        self.closed = True

    def forward(
        self,
        packet: RtpPacket,
        key: CodecKey,
        ntp: int,
        abs_send_time: int,
    ) -> None:
        if self.closed:
            return
        if not self._ready:
            if not hooks.sender_started(self.sender) or self.sender.transport.state != "connected":
                return
            self._ext_map = hooks.sender_extensions_map(self.sender)
            self._ready = True
            if self.publication.kind == "video":
                # late joiner: ask for a keyframe now rather than wait for one
                self.publication.request_keyframe_now(force=True)
                self._last_keyframe_ask = time.monotonic()
        payload_type = self._payload_types.get(key)
        if payload_type is None:
            return  # subscriber did not accept this codec
        if packet.ssrc != self._source_ssrc:
            # New source: video starts at a keyframe so the first frame decodes.
            if self.publication.kind == "video" and not is_keyframe_start(
                key.mime_type, packet.payload
            ):
                now = time.monotonic()
                if now - self._last_keyframe_ask > KEYFRAME_RETRY_INTERVAL:
                    self._last_keyframe_ask = now
                    self.publication.request_keyframe_now()
                return
            self._rebase(packet, key.clock_rate)

        sequence_number = (packet.sequence_number + self._seq_offset) & 0xFFFF
        timestamp = (packet.timestamp + self._ts_offset) & 0xFFFFFFFF
        packet.ssrc = self._ssrc
        packet.payload_type = payload_type
        packet.sequence_number = sequence_number
        packet.timestamp = timestamp
        extensions = packet.extensions
        extensions.mid = self._mid
        extensions.abs_send_time = abs_send_time
        extensions.rtp_stream_id = None
        extensions.repaired_rtp_stream_id = None
        data = packet.serialize(self._ext_map)
        self.history.put(sequence_number, data)
        self._last_seq = sequence_number
        self._last_ts = timestamp
        self._last_ts_time = time.monotonic()
        try:
            hooks.send_rtp_now(self.sender, data)
        except ConnectionError:
            return
        self.stats.packets_out += 1
        hooks.account_sent(self.sender, ntp, timestamp, len(packet.payload))

    def _rebase(self, packet: RtpPacket, clock_rate: int) -> None:
        """Start (or continue after a source change) the rewritten seq/ts sequences."""
        if self._last_seq is None:
            self._seq_offset = self._seq_start - packet.sequence_number
            self._ts_offset = 0
        else:
            elapsed = max(time.monotonic() - self._last_ts_time, 0.001)
            self._seq_offset = self._last_seq + 1 - packet.sequence_number
            self._ts_offset = (
                self._last_ts + int(elapsed * clock_rate) - packet.timestamp
            )
        self._source_ssrc = packet.ssrc

    def restart(self, publication: Publication) -> None:
        """Forward a new publication (the publisher reconnected) on the same sender."""
        self.publication = publication
        self._source_ssrc = None

    # RTCP from the subscriber

    async def _handle_rtcp(self, packet: AnyRtcpPacket) -> bool:
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            for sequence_number in packet.lost:
                self._retransmit(sequence_number)
            return True
        if isinstance(packet, RtcpPsfbPacket):
            if packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                await self.publication.request_keyframe()
                return True
            if packet.fmt == RTCP_PSFB_APP:
                try:
                    bitrate, ssrcs = unpack_remb_fci(packet.fci)
                except ValueError:
                    return True
                if self._ssrc in ssrcs:
                    await self.publication.update_remb(self, bitrate)
                return True
        return False

    def _retransmit(self, sequence_number: int) -> None:
        data = self.history.get(sequence_number)
        if data is None:
            self.stats.nacks_missed += 1
            return
        if self._rtx_payload_type is not None:
            data = make_rtx(data, self._rtx_payload_type, self._rtx_seq, self._rtx_ssrc)
            self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
        try:
            hooks.send_rtp_now(self.sender, data)
        except ConnectionError:
            return
        self.stats.nacks_answered += 1
