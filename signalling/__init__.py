"""CareTrack signalling: the /ws/signal WebSocket protocol for consultations.

The host application wires it up; nothing here imports ``caretrack``::

    service = SignallingService(relay, authenticate=..., allowed_origin=...,
                                authorize=..., hooks=MyHooks(), limits=Limits())
    app = Starlette(routes=[service.route("/ws/signal")])
    service.disconnect(websocket, 4401, "You were signed out.")  # the host withdrew a sign-in
    ...; await service.close()   # on shut-down, before relay.close()

See :mod:`signalling.protocol` for the messages and close codes.
"""

from .policy import Hooks, Limits, Principal, Refused, Role, Seat, StoredChat
from .protocol import ProtocolError, from_wire, to_wire
from .service import SignallingService

__all__ = [
    "Hooks",
    "Limits",
    "Principal",
    "ProtocolError",
    "Refused",
    "Role",
    "Seat",
    "SignallingService",
    "StoredChat",
    "from_wire",
    "to_wire",
]
