"""Fail loudly if an aiortc upgrade moves a private hook media/_aiortc_hooks.py uses."""

from __future__ import annotations

import inspect

import aiortc
from aiortc import RTCPeerConnection
from aiortc.rtcdtlstransport import RTCDtlsTransport, RtpRouter
from aiortc.rtcrtpreceiver import RTCRtpReceiver, StreamStatistics, decoder_worker
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from media import _aiortc_hooks as hooks


def params(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_pinned_version() -> None:
    assert aiortc.__version__.startswith(hooks.PINNED_AIORTC)


def test_method_signatures() -> None:
    assert params(RTCRtpReceiver._handle_rtp_packet) == ["self", "packet", "arrival_time_ms"]
    assert params(RTCRtpReceiver._send_rtcp) == ["self", "packet"]
    assert inspect.iscoroutinefunction(RTCRtpReceiver._send_rtcp)
    assert params(RTCRtpSender._handle_rtcp_packet) == ["self", "packet"]
    assert inspect.iscoroutinefunction(RTCRtpSender._handle_rtcp_packet)
    assert params(RTCDtlsTransport._send_rtp) == ["self", "data"]
    assert inspect.iscoroutinefunction(RTCDtlsTransport._send_rtp)
    assert params(StreamStatistics.__init__) == ["self", "clockrate"]
    assert params(StreamStatistics.add) == ["self", "packet"]
    assert params(hooks.NackGenerator.add) == ["self", "packet"]
    assert params(HeaderExtensionsMap.set) == ["self", "values"]
    assert params(RtpPacket.serialize) == ["self", "extensions_map"]
    assert params(decoder_worker) == ["loop", "input_q", "output_q", "decode_error"]


def test_dispatch_goes_through_the_instance_attributes() -> None:
    """Shadowing on the instance works only while aiortc looks the handlers up there."""
    dispatch = inspect.getsource(RTCDtlsTransport._handle_rtp_data)
    assert "receiver._handle_rtp_packet(packet, arrival_time_ms=arrival_time_ms)" in dispatch
    rtcp = inspect.getsource(RTCDtlsTransport._handle_rtcp_data)
    assert "recipient._handle_rtcp_packet(packet)" in rtcp
    routing = inspect.getsource(RtpRouter.route_rtcp)
    assert "self.senders.get(packet.media_ssrc)" in routing
    # RR/SR statistics come from the receiver's __remote_streams in _run_rtcp
    assert "self.__remote_streams.items()" in inspect.getsource(RTCRtpReceiver._run_rtcp)
    # sender reports read the counters account_sent() updates
    run_rtcp = inspect.getsource(RTCRtpSender._run_rtcp)
    for name in ("__ntp_timestamp", "__rtp_timestamp", "__packet_count", "__octet_count"):
        assert f"self.{name}" in run_rtcp
    # the sender loop awaits track.recv() before it would create an encoder
    next_frame = inspect.getsource(RTCRtpSender._next_encoded_frame)
    assert next_frame.index("await self.__track.recv()") < next_frame.index("get_encoder(codec)")


async def test_private_attributes_exist_on_live_objects() -> None:
    pc = RTCPeerConnection()
    try:
        transceiver = pc.addTransceiver("video")
        receiver, sender = transceiver.receiver, transceiver.sender
        for name in (
            hooks._RX_RTCP_SSRC,
            hooks._RX_REMOTE_STREAMS,
            hooks._RX_RTX_SSRC,
            hooks._RX_DECODER_THREAD,
        ):
            assert hasattr(receiver, name), name
        for name in (
            hooks._TX_EXT_MAP,
            hooks._TX_STARTED,
            hooks._TX_ENCODER,
            hooks._TX_NTP,
            hooks._TX_RTP_TS,
            hooks._TX_OCTETS,
            hooks._TX_PACKETS,
        ):
            assert hasattr(sender, name), name
        assert isinstance(sender._ssrc, int) and isinstance(sender._rtx_ssrc, int)
        assert isinstance(sender._stream_id, str)
        assert isinstance(transceiver._codecs, list)
        assert hooks.receiver_rtcp_ssrc(receiver) == sender._ssrc
        assert isinstance(hooks.sender_extensions_map(sender), HeaderExtensionsMap)
        assert hooks.sender_started(sender) is False
        assert hooks.sender_encoder(sender) is None
        assert isinstance(hooks.receiver_stream_statistics(receiver, 1234, 90000), StreamStatistics)
        assert hooks.receiver_rtx_ssrcs(receiver) == {}

        hooks.account_sent(sender, ntp_time=5, rtp_timestamp=7, size=100)
        stats = await sender.getStats()
        outbound = next(s for s in stats.values() if s.type == "outbound-rtp")
        assert (outbound.packetsSent, outbound.bytesSent) == (1, 100)
    finally:
        await pc.close()


def test_fast_path_internals() -> None:
    """send_rtp_now / the fast receive path repeat what these aiortc and aioice methods do."""
    from aioice import ice

    send_rtp = inspect.getsource(RTCDtlsTransport._send_rtp)
    for step in ("self._tx_srtp.protect_rtcp(data)", "self._tx_srtp.protect(data)",
                 "await self.transport._send(data)", "self.__tx_bytes", "self.__tx_packets"):
        assert step in send_rtp, step
    recv_next = inspect.getsource(RTCDtlsTransport._recv_next)
    for step in ("await self.transport._recv()", "self._rx_srtp.unprotect(data)",
                 "self.__rx_bytes", "self.__rx_packets"):
        assert step in recv_next, step
    handle_rtp = inspect.getsource(RTCDtlsTransport._handle_rtp_data)
    assert "RtpPacket.parse(data, self._rtp_header_extensions_map)" in handle_rtp
    assert "self._rtp_router.route_rtp(packet)" in handle_rtp
    # aioice: datagrams go protocol -> connection.data_received -> queue -> recv()
    assert "self.receiver.data_received(data, self.local_candidate.component)" in inspect.getsource(
        ice.StunProtocol.datagram_received
    )
    assert "self._queue.put_nowait((data, component))" in inspect.getsource(ice.Connection.data_received)
    assert "self._queue.get()" in inspect.getsource(ice.Connection.recvfrom)
    assert "self._nominated.get(component)" in inspect.getsource(ice.Connection.sendto)
    assert "active_pair.protocol.send_data(data, active_pair.remote_addr)" in inspect.getsource(
        ice.Connection.sendto
    )
    assert "self.transport.sendto(data, addr)" in inspect.getsource(ice.StunProtocol.send_data)


async def test_fast_path_attributes_exist_on_live_objects() -> None:
    pc = RTCPeerConnection()
    try:
        transceiver = pc.addTransceiver("video")
        dtls = transceiver.sender.transport
        for name in (hooks._DTLS_RX_BYTES, hooks._DTLS_RX_PACKETS, hooks._DTLS_TX_BYTES,
                     hooks._DTLS_TX_PACKETS, "_rx_srtp", "_tx_srtp", "_rtp_router",
                     "_rtp_header_extensions_map", "_state"):
            assert hasattr(dtls, name), name
        connection = dtls.transport._connection
        assert hasattr(connection, "_queue") and isinstance(connection._nominated, dict)
        # not connected: sending now fails the way aiortc's _send_rtp does
        try:
            hooks.send_rtp_now(transceiver.sender, b"\x80" * 20)
        except ConnectionError:
            pass
        else:
            raise AssertionError("send_rtp_now sent on a transport that is not connected")
    finally:
        await pc.close()
