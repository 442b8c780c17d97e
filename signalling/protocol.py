"""The /ws/signal wire protocol: one versioned codec for both directions.

Every message is a JSON object with ``"v": 1`` and a ``"type"``; unknown fields,
wrong types and oversized values are refused with a :class:`ProtocolError` that
names the problem.  ``from_wire`` parses what a client sent (or, with
``sender="server"``, what the server sent: browsers' tests and Python peers use
it), ``to_wire`` renders any message.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

VERSION: Final = 1
MAX_MESSAGE_BYTES = 64 * 1024
MAX_SDP_CHARS = 60_000
MAX_CHAT_CHARS = 2_000

# Close codes (also the ``code`` of ``error`` messages).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_RESTARTING = 1012  # the server (or the media worker hosting the call) restarts: reconnect
CLOSE_TRY_AGAIN = 1013  # no media worker can take the call right now: reconnect later
CLOSE_REPLACED = 4000  # the same user opened a newer socket for this consultation
CLOSE_MALFORMED = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_REFUSED = 4403
CLOSE_TIMEOUT = 4408
CLOSE_CLOSED = 4409  # the consultation is closed, ended, or outside its join window
CLOSE_TOO_LARGE = 4413
CLOSE_FLOODING = 4429
ERROR_INTERNAL = 4500  # an error message only: a hook failed, nothing was changed

ConsultationId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
ParticipantId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Sdp = Annotated[str, StringConstraints(min_length=1, max_length=MAX_SDP_CHARS)]
ChatText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_CHAT_CHARS, pattern=r"\S")]
Role = Literal["host", "patient", "guest"]
TrackId = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class ProtocolError(Exception):
    """A message the server cannot accept; ``code`` is a close/error code above."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Client(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    v: Literal[1]


class _Server(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    v: Literal[1] = VERSION


# --- client -> server ---------------------------------------------------------------------


class Join(_Client):
    """First message on a socket: which consultation this socket is for."""

    type: Literal["join"] = "join"
    consultation: ConsultationId


class Probe(_Client):
    """First message of a network-check socket, instead of ``join``: the server answers
    ``probe_ready``, then one ``offer`` (a data channel) with an ``answer`` from the relay,
    whose peer connection echoes what the channel sends.  Nothing joins the consultation."""

    type: Literal["probe"] = "probe"
    consultation: ConsultationId


class Offer(_Client):
    type: Literal["offer"] = "offer"
    sdp: Sdp


class Answer(_Client):
    type: Literal["answer"] = "answer"
    sdp: Sdp


class CandidateInit(BaseModel):
    """``RTCIceCandidate.toJSON()`` of a browser."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    candidate: Annotated[str, StringConstraints(max_length=1024)]
    sdpMid: Annotated[str, StringConstraints(max_length=64)] | None = None
    sdpMLineIndex: Annotated[int, Field(ge=0, le=1024)] | None = None
    usernameFragment: Annotated[str, StringConstraints(max_length=256)] | None = None


class Candidate(_Client):
    """A trickled ICE candidate; ``null`` means end of candidates."""

    type: Literal["candidate"] = "candidate"
    candidate: CandidateInit | None


class Leave(_Client):
    type: Literal["leave"] = "leave"


class Admit(_Client):
    """The host lets a waiting participant in."""

    type: Literal["admit"] = "admit"
    participant: ParticipantId


class Chat(_Client):
    type: Literal["chat"] = "chat"
    text: ChatText


class MediaState(_Client):
    type: Literal["media_state"] = "media_state"
    audio: bool
    video: bool


class ScreenShare(_Client):
    """``track``: the id the sender's SDP gives the shared screen's track (``a=msid``), which is
    the ``track`` of its ``TrackInfo`` on the others' pages, so they can tell it from the camera."""

    type: Literal["screen_share"] = "screen_share"
    active: bool
    track: TrackId | None = None


class RecordingConsent(_Client):
    type: Literal["recording_consent"] = "recording_consent"
    granted: bool


class End(_Client):
    """The host ends the consultation for everyone."""

    type: Literal["end"] = "end"


class Pong(_Client):
    type: Literal["pong"] = "pong"


ClientMessage = (
    Join | Probe | Offer | Answer | Candidate | Leave | Admit | Chat | MediaState | ScreenShare | RecordingConsent
    | End | Pong
)

# --- server -> client ---------------------------------------------------------------------


class IceServerInfo(BaseModel):
    """One ``RTCIceServer`` for the browser's ``RTCPeerConnection``."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    urls: list[str]
    username: str | None = None
    credential: str | None = None


class Welcome(_Server):
    type: Literal["welcome"] = "welcome"
    consultation: str
    participant: str
    name: str
    role: Role
    admitted: bool
    ice_servers: list[IceServerInfo]
    max_message_bytes: int


class ProbeReady(_Server):
    """The network check may send its ``offer``; these are the ICE servers the call uses."""

    type: Literal["probe_ready"] = "probe_ready"
    ice_servers: list[IceServerInfo]


class Waiting(_Server):
    """You are in the waiting room until the host admits you."""

    type: Literal["waiting"] = "waiting"
    host_present: bool


class WaitingPerson(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    participant: str
    name: str
    role: Role


class Lobby(_Server):
    """To the host: everyone waiting, in arrival order (sent on every change)."""

    type: Literal["lobby"] = "lobby"
    waiting: list[WaitingPerson]


class Admitted(_Server):
    """You may now send your offer."""

    type: Literal["admitted"] = "admitted"


class ParticipantInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    participant: str
    name: str
    role: Role
    audio: bool
    video: bool
    screen: bool
    screen_track: str | None = None


class Participants(_Server):
    """Everyone admitted and connected (sent to them on every change)."""

    type: Literal["participants"] = "participants"
    participants: list[ParticipantInfo]


class TrackInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    participant: str
    kind: Literal["audio", "video"]
    track: str


class RelayOffer(_Server):
    """A relay renegotiation: apply it and send an ``answer`` (roll back on glare)."""

    type: Literal["offer"] = "offer"
    sdp: str
    tracks: dict[str, TrackInfo]


class RelayAnswer(_Server):
    type: Literal["answer"] = "answer"
    sdp: str


class ChatPosted(_Server):
    type: Literal["chat"] = "chat"
    id: str
    at: str  # ISO 8601, UTC
    participant: str
    name: str
    text: str


class MediaStateChanged(_Server):
    type: Literal["media_state"] = "media_state"
    participant: str
    audio: bool
    video: bool


class ScreenShareChanged(_Server):
    type: Literal["screen_share"] = "screen_share"
    participant: str
    active: bool
    track: str | None = None


class Consents(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    host: bool
    patient: bool


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    participant: str
    name: str


class Recording(_Server):
    """Recording state and who has consented; ``on`` only when everyone in the call (guests
    included) has consented, and ``missing`` names those who have not."""

    type: Literal["recording"] = "recording"
    on: bool
    consents: Consents
    missing: list[Person] = []


class Error(_Server):
    type: Literal["error"] = "error"
    code: int
    message: str
    about: str | None = None  # the type of the message that caused it


class Ended(_Server):
    type: Literal["ended"] = "ended"
    reason: str


class Ping(_Server):
    """Reply with ``pong``; a socket that stays silent is closed with 4408."""

    type: Literal["ping"] = "ping"


ServerMessage = (
    Welcome | ProbeReady | Waiting | Lobby | Admitted | Participants | RelayOffer | RelayAnswer | ChatPosted
    | MediaStateChanged | ScreenShareChanged | Recording | Error | Ended | Ping
)

_client_types = {m.model_fields["type"].default: m for m in ClientMessage.__args__}
_server_types = {m.model_fields["type"].default: m for m in ServerMessage.__args__}
_adapters: dict[str, dict[str, TypeAdapter[BaseModel]]] = {
    "client": {name: TypeAdapter(model) for name, model in _client_types.items()},
    "server": {name: TypeAdapter(model) for name, model in _server_types.items()},
}
CLIENT_TYPES = frozenset(_client_types)
SERVER_TYPES = frozenset(_server_types)


def to_wire(message: BaseModel) -> str:
    return message.model_dump_json()


def decode_json(text: str | bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """Size and shape checks that make the socket unusable when they fail."""
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise ProtocolError(CLOSE_TOO_LARGE, f"message of {size} bytes is over the limit of {max_bytes}")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError(CLOSE_MALFORMED, "message is not JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError(CLOSE_MALFORMED, f"message must be a JSON object, not {type(data).__name__}")
    if "v" not in data:
        raise ProtocolError(CLOSE_MALFORMED, f"message has no 'v' (protocol version; this server speaks {VERSION})")
    if data["v"] != VERSION or isinstance(data["v"], bool):
        raise ProtocolError(
            CLOSE_MALFORMED, f"protocol version {str(data['v'])[:20]!r} is not supported; this server speaks {VERSION}"
        )
    return data


def validate(data: dict[str, Any], sender: Literal["client", "server"] = "client") -> BaseModel:
    """A decoded message as its typed model; an invalid one raises ProtocolError(4400)."""
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(CLOSE_MALFORMED, "message needs a string 'type'")
    adapter = _adapters[sender].get(kind)
    if adapter is None:
        known = ", ".join(sorted(_adapters[sender]))
        raise ProtocolError(CLOSE_MALFORMED, f"unknown message type {kind[:40]!r} (expected one of: {known})")
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        raise ProtocolError(CLOSE_MALFORMED, f"{kind}: {_describe(exc)}") from None


def from_wire(text: str | bytes, sender: Literal["client", "server"] = "client",
              max_bytes: int = MAX_MESSAGE_BYTES) -> BaseModel:
    return validate(decode_json(text, max_bytes), sender)


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors()[:3]:
        where = ".".join(str(part) for part in error["loc"]) or "message"
        problems.append(f"'{where}' {error['msg'][0].lower()}{error['msg'][1:]}")
    more = exc.error_count() - len(problems)
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")
