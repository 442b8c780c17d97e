"""Every private aiortc attribute the relay touches, in one place.

aiortc has no public API for forwarding RTP without decoding it, so the relay
hooks into the packet handlers of ``RTCRtpReceiver`` / ``RTCRtpSender`` and
writes to the DTLS transport directly.  Nothing else in ``media`` may reach
into aiortc's private names: if an upgrade moves one of them, the version
check below and ``tests/media/test_aiortc_hooks.py`` are where it shows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import aiortc
import pylibsrtp
from aioice import ice
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver, RTCSessionDescription
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtp import AnyRtcpPacket, HeaderExtensionsMap, RtpPacket, is_rtcp
from aiortc.sdp import SessionDescription

from .codecs import CodecKey, codec_key, is_rtx

logger = logging.getLogger(__name__)

PINNED_AIORTC = "1.16."

if not aiortc.__version__.startswith(PINNED_AIORTC):
    raise ImportError(
        f"media relay is pinned to aiortc {PINNED_AIORTC}x but aiortc "
        f"{aiortc.__version__} is installed: the relay reaches into aiortc's private "
        "RTP handling (media/_aiortc_hooks.py). Re-check every hook against the new "
        "version, run tests/media/test_aiortc_hooks.py, then update PINNED_AIORTC."
    )

RtpHandler = Callable[[RtpPacket, int], Coroutine[Any, Any, None]]
RtcpHandler = Callable[[AnyRtcpPacket], Awaitable[bool]]
SyncRtpHandler = Callable[[RtpPacket, int], None]

# Name-mangled private attributes, spelled out once.
_RX_RTCP_SSRC = "_RTCRtpReceiver__rtcp_ssrc"
_RX_REMOTE_STREAMS = "_RTCRtpReceiver__remote_streams"
_RX_RTX_SSRC = "_RTCRtpReceiver__rtx_ssrc"
_RX_DECODER_THREAD = "_RTCRtpReceiver__decoder_thread"
_TX_EXT_MAP = "_RTCRtpSender__rtp_header_extensions_map"
_TX_STARTED = "_RTCRtpSender__started"
_TX_ENCODER = "_RTCRtpSender__encoder"
_TX_NTP = "_RTCRtpSender__ntp_timestamp"
_TX_RTP_TS = "_RTCRtpSender__rtp_timestamp"
_TX_OCTETS = "_RTCRtpSender__octet_count"
_TX_PACKETS = "_RTCRtpSender__packet_count"
_PC_CERTIFICATES = "_RTCPeerConnection__certificates"
_DTLS_RX_BYTES = "_RTCDtlsTransport__rx_bytes"
_DTLS_RX_PACKETS = "_RTCDtlsTransport__rx_packets"
_DTLS_TX_BYTES = "_RTCDtlsTransport__tx_bytes"
_DTLS_TX_PACKETS = "_RTCDtlsTransport__tx_packets"
# our own marks on aiortc objects
_FAST_WRAPPER = "_caretrack_fast_wrapper"
_FAST_HANDLER = "_caretrack_fast_handler"
_FAST_INSTALLED = "_caretrack_fast_receive"
NTP_EPOCH_OFFSET_MS = 2208988800 * 1000  # aiortc's arrival times are NTP-epoch milliseconds

__all__ = [
    "NackGenerator",
    "StreamStatistics",
    "intercept_rtp",
    "intercept_rtp_now",
    "intercept_rtcp",
    "negotiated_codecs",
    "receiver_rtx_ssrcs",
    "receiver_stream_statistics",
    "receiver_send_rtcp",
    "receiver_rtcp_ssrc",
    "receiver_has_decoder_thread",
    "sender_extensions_map",
    "sender_ssrcs",
    "sender_started",
    "sender_encoder",
    "set_sender_stream",
    "send_rtp",
    "send_rtp_now",
    "receiver_send_rtcp_now",
    "account_sent",
    "pc_certificates",
    "set_pc_certificates",
]


# -- receiving side ---------------------------------------------------------


def intercept_rtp(receiver: RTCRtpReceiver, handler: RtpHandler) -> None:
    """Route every RTP packet for ``receiver`` to ``handler`` instead of aiortc.

    The DTLS transport's ``RtpRouter`` calls ``receiver._handle_rtp_packet``;
    shadowing it on the instance means aiortc never depacketises, jitter-buffers
    or decodes these packets.
    """
    # handler's parameters are positional: mypy calls that another type of method
    receiver._handle_rtp_packet = handler  # type: ignore[method-assign, assignment]


def intercept_rtp_now(receiver: RTCRtpReceiver, handler: SyncRtpHandler) -> None:
    """Like :func:`intercept_rtp` for a synchronous ``handler``, on a fast path.

    aiortc receives each datagram through aioice's queue and the DTLS
    transport's receive task: a future, a task wake-up and three coroutine
    frames per packet, which at a few thousand packets a second cost more than
    the forwarding itself.  Once the first packet arrives the usual way, SRTP
    packets on this receiver's transport are decrypted, parsed, routed and
    handed to ``handler`` straight from the socket's ``datagram_received``
    (:func:`_install_fast_receive`).  DTLS and SRTCP still take aiortc's path.
    """

    async def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
        _install_fast_receive(receiver.transport)
        handler(packet, arrival_time_ms)

    receiver._handle_rtp_packet = handle  # type: ignore[method-assign]
    setattr(receiver, _FAST_WRAPPER, handle)
    setattr(receiver, _FAST_HANDLER, handler)


def _install_fast_receive(dtls: RTCDtlsTransport) -> None:
    """Handle SRTP datagrams for ``dtls`` in the ICE connection's receive callback."""
    if getattr(dtls, _FAST_INSTALLED, False):
        return
    connection: ice.Connection = dtls.transport._connection
    queue: asyncio.Queue[Any] = connection._queue
    original = connection.data_received
    loop = asyncio.get_running_loop()
    setattr(dtls, _FAST_INSTALLED, True)

    def data_received(data: bytes, component: int) -> None:
        # RTP only (first byte 128-191, not RTCP), once SRTP keys exist, and only
        # while nothing waits in aiortc's queue, so packets stay in order.
        if (
            127 < data[0] < 192
            and not is_rtcp(data)
            and dtls._rx_srtp is not None
            and dtls._state == DtlsState.CONNECTED
            and queue.empty()
        ):
            _receive_rtp(dtls, data, loop)
        else:
            original(data, component)

    connection.data_received = data_received  # type: ignore[method-assign]


def _receive_rtp(dtls: RTCDtlsTransport, data: bytes, loop: asyncio.AbstractEventLoop) -> None:
    """What ``RTCDtlsTransport._recv_next`` and ``_handle_rtp_data`` do for SRTP, synchronously."""
    setattr(dtls, _DTLS_RX_BYTES, getattr(dtls, _DTLS_RX_BYTES) + len(data))
    setattr(dtls, _DTLS_RX_PACKETS, getattr(dtls, _DTLS_RX_PACKETS) + 1)
    arrival_time_ms = int(time.time() * 1000) + NTP_EPOCH_OFFSET_MS
    try:
        data = dtls._rx_srtp.unprotect(data)
        packet = RtpPacket.parse(data, dtls._rtp_header_extensions_map)
    except (pylibsrtp.Error, ValueError):
        return
    receiver = dtls._rtp_router.route_rtp(packet)
    if receiver is None:
        return
    wrapper = receiver.__dict__.get("_handle_rtp_packet")
    if wrapper is None or wrapper is not getattr(receiver, _FAST_WRAPPER, None):
        # not ours (or wrapped again since, e.g. by a test spy): aiortc's own coroutine
        loop.create_task(receiver._handle_rtp_packet(packet, arrival_time_ms))
        return
    try:
        getattr(receiver, _FAST_HANDLER)(packet, arrival_time_ms)
    except Exception:
        # an exception escaping datagram_received would close the socket
        logger.exception("RTP handler failed for %r", receiver)


def negotiated_codecs(transceiver: RTCRtpTransceiver) -> list[RTCRtpCodecParameters]:
    """Codecs (with payload types) agreed for this transceiver by the last negotiation."""
    return list(transceiver._codecs)


def receiver_rtx_ssrcs(receiver: RTCRtpReceiver) -> dict[int, int]:
    """Map of RTX SSRC -> media SSRC announced by the remote peer."""
    ssrcs: dict[int, int] = getattr(receiver, _RX_RTX_SSRC)
    return ssrcs


def receiver_stream_statistics(
    receiver: RTCRtpReceiver, ssrc: int, clockrate: int
) -> StreamStatistics:
    """The statistics aiortc's RTCP loop reports to the remote sender in RR packets."""
    streams: dict[int, StreamStatistics] = getattr(receiver, _RX_REMOTE_STREAMS)
    stats = streams.get(ssrc)
    if stats is None:
        stats = streams[ssrc] = StreamStatistics(clockrate)
    return stats


def receiver_rtcp_ssrc(receiver: RTCRtpReceiver) -> int | None:
    ssrc: int | None = getattr(receiver, _RX_RTCP_SSRC)
    return ssrc


async def receiver_send_rtcp(receiver: RTCRtpReceiver, packet: AnyRtcpPacket) -> None:
    """Send RTCP feedback (PLI, NACK, REMB) to the remote sender of this receiver."""
    await receiver._send_rtcp(packet)


def receiver_send_rtcp_now(receiver: RTCRtpReceiver, packet: AnyRtcpPacket) -> None:
    """:func:`receiver_send_rtcp` without awaiting; dropped if the transport is down."""
    try:
        send_rtp_now(receiver.transport, bytes(packet))
    except ConnectionError:
        pass


def receiver_has_decoder_thread(receiver: RTCRtpReceiver) -> bool:
    return getattr(receiver, _RX_DECODER_THREAD) is not None


# -- sending side -----------------------------------------------------------


def intercept_rtcp(sender: RTCRtpSender, handler: RtcpHandler) -> None:
    """Give ``handler`` first look at RTCP addressed to ``sender``.

    ``handler`` returns True when it consumed the packet (PLI, FIR, NACK, REMB:
    aiortc's sender would only act on them when it encodes itself); anything else
    (receiver reports, for RTT and stats) continues to aiortc.
    """
    original = sender._handle_rtcp_packet

    async def handle(packet: AnyRtcpPacket) -> None:
        if not await handler(packet):
            await original(packet)

    sender._handle_rtcp_packet = handle  # type: ignore[method-assign]


def sender_extensions_map(sender: RTCRtpSender) -> HeaderExtensionsMap:
    """Header extension ids negotiated for this sender (set by ``sender.send()``)."""
    extensions: HeaderExtensionsMap = getattr(sender, _TX_EXT_MAP)
    return extensions


def sender_ssrcs(sender: RTCRtpSender) -> tuple[int, int]:
    """(media SSRC, RTX SSRC) the sender announces in SDP."""
    return sender._ssrc, sender._rtx_ssrc


def sender_started(sender: RTCRtpSender) -> bool:
    """True once aiortc called ``sender.send()`` (transport connected, ids configured)."""
    started: bool = getattr(sender, _TX_STARTED)
    return started


def sender_encoder(sender: RTCRtpSender) -> object:
    return getattr(sender, _TX_ENCODER)


def set_sender_stream(sender: RTCRtpSender, stream_id: str) -> None:
    """Set the ``a=msid`` stream id, so subscribers can tell whose track it is."""
    sender._stream_id = stream_id


async def send_rtp(sender: RTCRtpSender, data: bytes) -> None:
    """Encrypt (SRTP) and send a serialised RTP or RTCP packet on the sender's transport."""
    await sender.transport._send_rtp(data)


def send_rtp_now(sender_or_transport: RTCRtpSender | RTCDtlsTransport, data: bytes) -> None:
    """Encrypt and send an RTP or RTCP packet now, as ``RTCDtlsTransport._send_rtp`` would.

    aiortc's path awaits three coroutines that never suspend (DTLS ``_send_rtp``,
    ``Connection.sendto``, ``StunProtocol.send_data``) before ``transport.sendto``.
    Raises ConnectionError when the transport is not connected.
    """
    dtls = sender_or_transport
    if not isinstance(dtls, RTCDtlsTransport):
        dtls = dtls.transport
    if dtls._state != DtlsState.CONNECTED:
        raise ConnectionError("Cannot send encrypted RTP, not connected")
    data = dtls._tx_srtp.protect_rtcp(data) if is_rtcp(data) else dtls._tx_srtp.protect(data)
    pair = dtls.transport._connection._nominated.get(1)
    if pair is None:
        raise ConnectionError("Cannot send data, not connected")
    protocol = pair.protocol
    if type(protocol) is ice.StunProtocol:
        protocol.transport.sendto(data, pair.remote_addr)  # = StunProtocol.send_data
    else:  # pragma: no cover - aioice uses StunProtocol for every pair today
        asyncio.ensure_future(protocol.send_data(data, pair.remote_addr))
    setattr(dtls, _DTLS_TX_BYTES, getattr(dtls, _DTLS_TX_BYTES) + len(data))
    setattr(dtls, _DTLS_TX_PACKETS, getattr(dtls, _DTLS_TX_PACKETS) + 1)


def account_sent(sender: RTCRtpSender, ntp_time: int, rtp_timestamp: int, size: int) -> None:
    """Update the counters aiortc puts in its RTCP sender reports (for lip sync, stats)."""
    setattr(sender, _TX_NTP, ntp_time)
    setattr(sender, _TX_RTP_TS, rtp_timestamp)
    setattr(sender, _TX_OCTETS, getattr(sender, _TX_OCTETS) + size)
    setattr(sender, _TX_PACKETS, getattr(sender, _TX_PACKETS) + 1)


# -- peer connection --------------------------------------------------------


def pc_certificates(pc: RTCPeerConnection) -> list[Any]:
    return list(getattr(pc, _PC_CERTIFICATES))


def set_pc_certificates(pc: RTCPeerConnection, certificates: list[Any]) -> None:
    """Reuse DTLS certificates (same fingerprint) for a replacement connection."""
    setattr(pc, _PC_CERTIFICATES, list(certificates))


# --- renegotiation that keeps what was negotiated ------------------------------------------
# aiortc's createOffer resets every transceiver's codecs and header-extension ids to its
# own defaults. A browser refuses a re-offer that renumbers an extension or a payload type
# it has negotiated ("RTP extension ID reassignment not supported"), and in a BUNDLE group
# one id or payload type must mean one thing across every m-line. So existing m-lines keep
# their negotiated parameters, and new ones are mapped onto the session's numbering.


def _payload_type(codec: RTCRtpCodecParameters) -> int:
    if codec.payloadType is None:  # every negotiated or parsed codec has one
        raise ValueError(f"codec {codec.mimeType} has no payload type")
    return codec.payloadType


def _apt(codec: RTCRtpCodecParameters) -> int:
    """The payload type an RTX codec repairs; -1 when it names none."""
    return int(str(codec.parameters.get("apt", -1)))


async def create_offer_keeping_negotiated(pc: RTCPeerConnection) -> RTCSessionDescription:
    transceivers = pc.getTransceivers()
    saved = {t.mid: (list(t._codecs), list(t._headerExtensions)) for t in transceivers
             if t.mid is not None and t._codecs}
    offer = await pc.createOffer()
    for transceiver in transceivers:
        if transceiver.mid in saved:
            transceiver._codecs, transceiver._headerExtensions = saved[transceiver.mid]
    if not saved:
        return offer

    ext_ids: dict[str, int] = {}
    codec_pts: dict[CodecKey, int] = {}
    rtx_pts: dict[int, int] = {}
    used_pts: set[int] = set()
    for codecs, extensions in saved.values():
        for extension in extensions:
            ext_ids.setdefault(extension.uri, extension.id)
        for codec in codecs:
            used_pts.add(_payload_type(codec))
            if is_rtx(codec):
                rtx_pts.setdefault(_apt(codec), _payload_type(codec))
            else:
                codec_pts.setdefault(codec_key(codec), _payload_type(codec))

    def free_pt() -> int:
        pt = next(p for p in range(96, 128) if p not in used_pts)
        used_pts.add(pt)
        return pt

    def free_ext_id(uri: str) -> int:
        ext_ids[uri] = next(i for i in range(1, 15) if i not in ext_ids.values())
        return ext_ids[uri]

    description = SessionDescription.parse(offer.sdp)
    for media in description.media:
        if media.kind not in ("audio", "video"):
            continue
        mid = media.rtp.muxId
        if mid in saved:
            codecs, extensions = saved[mid]
        else:
            mapping: dict[int, int] = {}
            codecs = []
            for codec in media.rtp.codecs:
                if is_rtx(codec):
                    continue
                key = codec_key(codec)
                pt = codec_pts.get(key)
                if pt is None:
                    pt = codec_pts[key] = free_pt()
                mapping[_payload_type(codec)] = pt
                codecs.append(dataclasses.replace(codec, payloadType=pt))
            for codec in media.rtp.codecs:
                if is_rtx(codec) and _apt(codec) in mapping:
                    apt = mapping[_apt(codec)]
                    pt = rtx_pts.get(apt) or free_pt()
                    rtx_pts[apt] = pt
                    codecs.append(dataclasses.replace(codec, payloadType=pt, parameters={"apt": apt}))
            extensions = [dataclasses.replace(e, id=ext_ids.get(e.uri) or free_ext_id(e.uri))
                          for e in media.rtp.headerExtensions]
        media.rtp.codecs = codecs
        media.rtp.headerExtensions = extensions
        media.fmt = [codec.payloadType for codec in codecs]
    return RTCSessionDescription(sdp=str(description), type="offer")
