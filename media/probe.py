"""The far end of the pre-call network check: a short-lived peer connection with the
relay that echoes its data channels' messages.

It gathers under the relay's ICE policy (``udp_ports``, ``allowed_networks``) with the
relay's ICE servers, so a browser that gets its echoes back can reach the relay the way
its call's media will.  It carries no audio or video, and echoes only short text.
"""

from __future__ import annotations

import itertools
import logging
from typing import TYPE_CHECKING

from aiortc import RTCConfiguration, RTCDataChannel, RTCIceServer, RTCPeerConnection, RTCSessionDescription

from . import _aioice_hooks as ice_hooks
from .relay import RelayError, _filter_candidates, _parse

if TYPE_CHECKING:
    from .relay import Relay

logger = logging.getLogger(__name__)

MAX_PROBES = 32  # network checks open at once in one relay
MAX_ECHO_CHARS = 64

_ids = itertools.count(1)


class Probe:
    """One network check's peer connection; ``answer`` is the relay's SDP answer."""

    def __init__(self, relay: Relay, pc: RTCPeerConnection, log_prefix: str, owner: str) -> None:
        self.relay = relay
        self.owner = owner
        self.pc = pc
        self.log_prefix = log_prefix
        self.answer = ""
        self.echoed = 0

    def __repr__(self) -> str:
        return f"Probe({self.log_prefix})"

    def _echo_on(self, channel: RTCDataChannel) -> None:
        @channel.on("message")
        def echo(message: str | bytes) -> None:
            if isinstance(message, str) and len(message) <= MAX_ECHO_CHARS and channel.readyState == "open":
                channel.send(message)
                self.echoed += 1

    async def close(self) -> None:
        self.relay.probes.discard(self)
        await self.relay._close_pc(self.pc)


async def open_probe(relay: Relay, offer_sdp: str, owner: str) -> Probe:
    """Answer a network check's offer: data channels only, at most ``MAX_PROBES`` at once.
    A new check by the same ``owner`` (a participant id) closes their older one."""
    description = _parse(offer_sdp, "the network check's offer")
    kinds = {m.kind for m in description.media}
    if kinds != {"application"}:
        raise RelayError("a network check offers one data channel and no audio or video "
                         f"(its offer has {', '.join(sorted(kinds))})")
    for older in [probe for probe in relay.probes if probe.owner == owner]:
        await older.close()
    if len(relay.probes) >= MAX_PROBES:
        raise RelayError(f"{MAX_PROBES} network checks are already running on this server; try again in a minute")
    servers = [RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
               for s in relay.config.ice_servers]
    pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))  # explicit: no public STUN default
    probe = Probe(relay, pc, f"[probe {next(_ids)} {owner}]", owner)
    relay._register(pc, probe.log_prefix)
    relay.probes.add(probe)
    pc.on("datachannel", probe._echo_on)
    try:
        await pc.setRemoteDescription(
            RTCSessionDescription(sdp=_filter_candidates(offer_sdp, relay.config), type="offer"))
        answer = await pc.createAnswer()
        with ice_hooks.applying(relay.ice_policy):
            await pc.setLocalDescription(answer)
    except ice_hooks.PortRangeExhausted as exc:
        await probe.close()
        raise RelayError(f"the network check cannot start: {exc.strerror}") from None
    except Exception as exc:
        await probe.close()
        raise RelayError(f"the network check's offer cannot be applied: {exc}") from None
    probe.answer = pc.localDescription.sdp
    logger.info("%s answered", probe.log_prefix)
    return probe
