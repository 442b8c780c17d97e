"""CareTrack media relay: an aiortc SFU that forwards RTP without decoding it.

Public API::

    relay = Relay(RelayConfig(allowed_networks=("192.0.2.0/24",), udp_ports=(40000, 40999)))
    room = relay.room("appointment-42")
    participant = await room.join("patient-7", offer_sdp)   # answer: first message
    async for message in participant.messages(): ...        # to the client, in order
    await participant.handle_answer(sdp) / handle_offer(sdp) / add_ice_candidate(c)
    await room.start_recording("appointment-42.webm"); await room.stop_recording()
    await room.leave("patient-7"); await room.close(); await relay.close()
    probe = await open_probe(relay, offer_sdp, "patient-7")  # a network check: probe.answer echoes

Nothing here imports ``caretrack``: the host passes a :class:`RelayConfig`.
"""

from .config import IceServer, RelayConfig
from .probe import Probe, open_probe
from .relay import Participant, Relay, RelayError, Room

__all__ = ["IceServer", "Participant", "Probe", "Relay", "RelayConfig", "RelayError", "Room", "open_probe"]
