"""Rooms, participants and SDP negotiation for the RTP-forwarding relay.

Each participant holds ONE ``RTCPeerConnection`` with the relay.  The m-lines
the participant sends on are its *publications*; the relay adds one sendonly
m-line per track of every other participant (*subscriptions*) and renegotiates
(relay-side offer) whenever tracks appear or go away.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.rtcrtpparameters import RTCRtpCodecCapability
from aiortc.sdp import SessionDescription, candidate_from_sdp

from . import _aioice_hooks as ice_hooks
from . import _aiortc_hooks as hooks
from .codecs import is_rtx
from .config import RelayConfig
from .forwarding import Publication, Subscription
from .recording import Recorder, RecordingError

if TYPE_CHECKING:
    from .probe import Probe

logger = logging.getLogger(__name__)

Message = dict[str, Any]

_pc_counter = itertools.count(1)


class RelayError(Exception):
    """A request the relay cannot honour; the message names the problem."""


class _IdleTrack(MediaStreamTrack):
    """Placeholder track for a forwarding sender: never yields a frame.

    aiortc's sender loop awaits ``recv()`` before it would create an encoder, so
    with this track it never encodes; the relay writes RTP to the transport.
    """

    def __init__(self, kind: str, track_id: str) -> None:
        super().__init__()
        self.kind = kind
        self._id = track_id
        self._never: asyncio.Future[None] | None = None

    async def recv(self) -> NoReturn:
        self._never = asyncio.get_running_loop().create_future()
        await self._never
        raise AssertionError("unreachable")  # pragma: no cover


def _filter_candidates(sdp: str, config: RelayConfig) -> str:
    """Drop ``a=candidate`` lines whose address the relay may not send media to."""
    lines = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            parts = line.split()
            if len(parts) < 6 or not config.address_allowed(parts[4]):
                continue
        lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def _parse(sdp: str, what: str) -> SessionDescription:
    try:
        description = SessionDescription.parse(sdp)
    except (ValueError, IndexError, KeyError) as exc:
        raise RelayError(f"{what} is not valid SDP: {exc}") from None
    if not description.media:
        raise RelayError(f"{what} is not valid SDP: it has no m= sections")
    return description


def _msid_track_ids(description: SessionDescription) -> dict[str, str]:
    """The track id the client gave each m-line (``a=msid:<stream> <track>``), so that its
    TrackInfo names the track as the client knows it.  aiortc's own remote track ids only
    follow msid for streams listed in ``a=msid-semantic``, which Chromium does not always
    do (a screen share's stream is left out), and otherwise are made up."""
    named = {}
    for media in description.media:
        parts = (media.msid or "").split()
        if media.rtp.muxId and len(parts) == 2 and parts[1] != "-":
            named[media.rtp.muxId] = parts[1]
    return named


def _ice_ufrag(description: SessionDescription) -> str | None:
    for media in description.media:
        if media.ice and media.ice.usernameFragment:
            return media.ice.usernameFragment
    return None


class Participant:
    """One participant's connection to the relay.

    Drive it from the signalling layer with two loops: forward every message of
    :meth:`messages` to the client, in order, and call :meth:`handle_answer`,
    :meth:`handle_offer` or :meth:`add_ice_candidate` for what the client sends.
    """

    def __init__(self, room: Room, participant_id: str) -> None:
        self.id = participant_id
        self.room = room
        self.publications: dict[str, Publication] = {}  # by mid on this connection
        self.subscriptions: list[Subscription] = []
        # Publications to subscribe to at the next relay offer: transceivers are only added
        # under the lock, never while an offer from the client is being answered.
        self._wanted: list[Publication] = []
        self.closed = False
        self._config = room.relay.config
        self._outbox: asyncio.Queue[Message | None] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._renegotiate_pending = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.pc = self._new_pc()

    def __repr__(self) -> str:
        return f"Participant({self.room.id}/{self.id})"

    @property
    def log_prefix(self) -> str:
        return self._log_prefix

    @property
    def connection_state(self) -> str:
        return self.pc.connectionState

    def _new_pc(self) -> RTCPeerConnection:
        servers = [
            RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
            for s in self._config.ice_servers
        ]
        # an explicit (possibly empty) list: aiortc's default is a public STUN server
        pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        self._log_prefix = f"[pc {next(_pc_counter)} {self.room.id}/{self.id}]"
        self.room.relay._register(pc, self._log_prefix)

        @pc.on("connectionstatechange")
        def on_state() -> None:
            logger.info("%s connection %s", self._log_prefix, pc.connectionState)

        return pc

    # -- signalling API ----------------------------------------------------

    async def messages(self) -> AsyncIterator[Message]:
        """Signalling messages for the client, in the order it must apply them.

        ``{"type": "answer", "sdp": ...}`` answers the client's last offer;
        ``{"type": "offer", "sdp": ..., "tracks": {mid: {...}}}`` is a relay
        renegotiation the client must answer with :meth:`handle_answer`.
        ``tracks`` says whose track each relay m-line carries:
        ``{"participant": id, "kind": "audio"|"video", "track": publisher track id}``
        (``a=msid`` carries the same participant id as the stream id).
        The iterator ends when the participant leaves.
        """
        while True:
            message = await self._outbox.get()
            if message is None:
                return
            yield message

    async def handle_offer(self, sdp: str) -> None:
        """Apply an offer from the client (new tracks, removed tracks, ICE restart).

        The relay is the *impolite* peer: an offer that collides with a relay
        offer still waiting for its answer is ignored (aiortc cannot roll back),
        and the client is expected to roll back its own offer and answer ours.
        An offer with new ICE credentials (ICE restart, or a client that
        rebuilt its connection) replaces this participant's peer connection;
        the other participants keep their subscriptions without renegotiating.
        """
        description = _parse(sdp, "offer")
        async with self._lock:
            self._check_open()
            if self.pc.signalingState == "have-local-offer":
                logger.info("%s ignoring colliding offer (glare)", self._log_prefix)
                return
            current = self.pc.remoteDescription
            if current is not None and _ice_ufrag(description) != _ice_ufrag(
                SessionDescription.parse(current.sdp)
            ):
                await self._restart(sdp)
            else:
                await self._accept_offer(sdp)
        self.room._publications_changed(self)

    async def handle_answer(self, sdp: str) -> None:
        """Apply the client's answer to the last relay offer."""
        _parse(sdp, "answer")
        async with self._lock:
            self._check_open()
            if self.pc.signalingState != "have-local-offer":
                raise RelayError(
                    f"{self}: got an answer in signalling state {self.pc.signalingState!r}"
                )
            await self.pc.setRemoteDescription(
                RTCSessionDescription(sdp=_filter_candidates(sdp, self._config), type="answer")
            )
            for subscription in self.subscriptions:
                if subscription.transceiver.mid is not None:
                    subscription.negotiated()
            again = self._renegotiate_pending
        if again:
            self.request_renegotiation()

    async def add_ice_candidate(self, candidate: dict[str, Any] | None) -> None:
        """Add a trickled remote candidate (``RTCIceCandidateInit`` as a dict).

        ``None`` or an empty candidate string means end-of-candidates.
        Candidates outside ``RelayConfig.allowed_networks`` are dropped.
        """
        self._check_open()
        if not candidate or not candidate.get("candidate"):
            await self.pc.addIceCandidate(None)
            return
        text = candidate["candidate"]
        try:
            parsed = candidate_from_sdp(text.split(":", 1)[1] if text.startswith("candidate:") else text)
        except (ValueError, IndexError) as exc:
            raise RelayError(f"ICE candidate {text!r} is malformed: {exc}") from None
        if not self._config.address_allowed(parsed.ip):
            logger.info("%s dropped candidate outside allowed networks: %s", self._log_prefix, parsed.ip)
            return
        parsed.sdpMid = candidate.get("sdpMid")
        parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
        if parsed.sdpMid is None and parsed.sdpMLineIndex is None:
            raise RelayError("ICE candidate needs sdpMid or sdpMLineIndex")
        await self.pc.addIceCandidate(parsed)

    # -- negotiation internals ---------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise RelayError(f"{self} has left the room")

    async def _accept_offer(self, sdp: str) -> None:
        offer = RTCSessionDescription(sdp=_filter_candidates(sdp, self._config), type="offer")
        try:
            await self.pc.setRemoteDescription(offer)
        except Exception as exc:
            raise RelayError(f"{self}: cannot apply offer: {exc}") from exc
        # A client may start sending on an m-line the relay offered for receiving
        # (browsers' addTrack reuses such transceivers): accept it as a publication.
        sending = self._client_sending_mids()
        for subscription in self.subscriptions:
            transceiver = subscription.transceiver
            if transceiver.mid in sending and transceiver.direction == "sendonly":
                transceiver.direction = "sendrecv"
        answer = await self.pc.createAnswer()
        with self._gathering():
            await self.pc.setLocalDescription(answer)
        self._update_publications()
        for subscription in self.subscriptions:
            if subscription.transceiver.mid is not None:
                subscription.negotiated()
        self._outbox.put_nowait({"type": "answer", "sdp": self.pc.localDescription.sdp})

    @contextlib.contextmanager
    def _gathering(self) -> Iterator[None]:
        """ICE gathering (in ``setLocalDescription``) under the relay's ICE policy:
        host ports in ``udp_ports``, no STUN answers outside ``allowed_networks``."""
        try:
            with ice_hooks.applying(self.room.relay.ice_policy):
                yield
        except ice_hooks.PortRangeExhausted as exc:
            raise RelayError(f"{self}: {exc.strerror}") from None

    def _client_sending_mids(self) -> set[str]:
        remote = SessionDescription.parse(self.pc.remoteDescription.sdp)
        return {
            m.rtp.muxId
            for m in remote.media
            if m.kind in ("audio", "video") and m.direction in ("sendrecv", "sendonly")
        }

    def _update_publications(self) -> None:
        """Create publications for m-lines the client sends on; retire the others."""
        sending = self._client_sending_mids()
        named = _msid_track_ids(SessionDescription.parse(self.pc.remoteDescription.sdp))
        for transceiver in self.pc.getTransceivers():
            mid = transceiver.mid
            if mid is None:
                continue
            publication = self.publications.get(mid)
            if mid in sending:
                if publication is None:
                    track = transceiver.receiver.track
                    self.publications[mid] = Publication(
                        self.id,
                        transceiver,
                        track_id=named.get(mid) or (track.id if track is not None else mid),
                        config_max_bitrate=self._config.max_video_bitrate,
                    )
                else:
                    publication.refresh_codecs()
            elif publication is not None:
                self.room._unpublish(publication)
                del self.publications[mid]

    async def _restart(self, sdp: str) -> None:
        """Replace the peer connection (ICE restart / client reconnect)."""
        logger.info("%s ICE restart: replacing peer connection", self._log_prefix)
        old_pc = self.pc
        old_publications = list(self.publications.values())
        for subscription in self.subscriptions:
            subscription.close()
        pending = [s.publication for s in self.subscriptions] + self._wanted
        self.subscriptions = []
        self._wanted = []
        self.publications = {}
        self.pc = self._new_pc()
        await self._accept_offer(sdp)
        # Hand other participants' subscriptions over to the new publications.
        self.room._replace_publications(self, old_publications, list(self.publications.values()))
        for publication in pending:
            if not publication.closed:
                self.subscribe(publication)
        await self.room.relay._close_pc(old_pc)
        for publication in old_publications:
            publication.close()

    def subscribe(self, publication: Publication) -> None:
        """Queue a subscription to ``publication``; sent with the next relay offer."""
        if publication in self._wanted or any(s.publication is publication for s in self.subscriptions):
            return
        self._wanted.append(publication)
        self.request_renegotiation()

    def _add_wanted_subscriptions(self) -> None:
        """Under the lock, in a stable state: a sending m-line per queued publication."""
        for publication in self._wanted:
            if publication.closed:
                continue
            transceiver = self._subscription_transceiver(publication)
            subscription = Subscription(publication, self.id, transceiver, self._config.nack_history_packets)
            self.subscriptions.append(subscription)
            publication.subscriptions.append(subscription)
        self._wanted = []

    def unsubscribe(self, publication: Publication) -> None:
        if publication in self._wanted:
            self._wanted.remove(publication)
        for subscription in [s for s in self.subscriptions if s.publication is publication]:
            subscription.close()
            self.subscriptions.remove(subscription)
            if subscription in publication.subscriptions:
                publication.subscriptions.remove(subscription)
            transceiver = subscription.transceiver
            transceiver.direction = "recvonly" if transceiver.direction == "sendrecv" else "inactive"
            self.request_renegotiation()

    def _subscription_transceiver(self, publication: Publication) -> RTCRtpTransceiver:
        track = _IdleTrack(publication.kind, f"{publication.participant_id}-{publication.track_id}")
        transceiver = self.pc.addTransceiver(track, direction="sendonly")
        hooks.set_sender_stream(transceiver.sender, publication.participant_id)
        codec = publication.codec
        preferences = [
            RTCRtpCodecCapability(
                mimeType=codec.mimeType,
                clockRate=codec.clockRate,
                channels=codec.channels,
                parameters=dict(codec.parameters),
            )
        ]
        if publication.kind == "video" and any(
            is_rtx(c) for c in RTCRtpSender.getCapabilities("video").codecs
        ):
            preferences.append(RTCRtpCodecCapability(mimeType="video/rtx", clockRate=codec.clockRate))
        transceiver.setCodecPreferences(preferences)
        return transceiver

    def request_renegotiation(self) -> None:
        """Send a relay offer soon (coalesced; deferred while an offer is outstanding)."""
        if self.closed:
            return
        self._renegotiate_pending = True
        task = asyncio.ensure_future(self._renegotiate())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _renegotiate(self) -> None:
        async with self._lock:
            if self.closed or not self._renegotiate_pending:
                return
            if self.pc.signalingState != "stable" or self.pc.remoteDescription is None:
                return  # retried after the pending answer arrives
            self._renegotiate_pending = False
            self._add_wanted_subscriptions()
            offer = await hooks.create_offer_keeping_negotiated(self.pc)
            try:
                with self._gathering():
                    await self.pc.setLocalDescription(offer)
            except RelayError as exc:
                logger.error("%s renegotiation failed: %s", self._log_prefix, exc)
                return
            tracks = {
                s.transceiver.mid: {
                    "participant": s.publication.participant_id,
                    "kind": s.publication.kind,
                    "track": s.publication.track_id,
                }
                for s in self.subscriptions
            }
            self._outbox.put_nowait(
                {"type": "offer", "sdp": self.pc.localDescription.sdp, "tracks": tracks}
            )

    async def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for subscription in self.subscriptions:
            subscription.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for publication in self.publications.values():
            publication.close()
        await self.room.relay._close_pc(self.pc)
        self._outbox.put_nowait(None)


class Room:
    """Participants who see and hear each other, and the room's recording."""

    def __init__(self, relay: Relay, room_id: str) -> None:
        self.relay = relay
        self.id = room_id
        self.participants: dict[str, Participant] = {}
        self._recorder: Recorder | None = None
        self.closed = False

    def __repr__(self) -> str:
        return f"Room({self.id})"

    async def join(self, participant_id: str, offer_sdp: str) -> Participant:
        """Add a participant from its first offer; the answer is its first message.

        Joining again with an id already in the room is a reconnect (see
        :meth:`Participant.handle_offer`).
        """
        if self.closed:
            raise RelayError(f"{self} is closed")
        _parse(offer_sdp, "offer")
        existing = self.participants.get(participant_id)
        if existing is not None:
            async with existing._lock:
                await existing._restart(offer_sdp)
            self._publications_changed(existing)
            return existing
        participant = Participant(self, participant_id)
        self.participants[participant_id] = participant
        try:
            async with participant._lock:
                await participant._accept_offer(offer_sdp)
        except BaseException:
            del self.participants[participant_id]
            await participant._close()
            raise
        for other in self.participants.values():
            if other is not participant:
                for publication in other.publications.values():
                    participant.subscribe(publication)
        self._publications_changed(participant)
        return participant

    async def leave(self, participant_id: str) -> None:
        participant = self.participants.pop(participant_id, None)
        if participant is None:
            return
        for publication in participant.publications.values():
            self._unpublish(publication)
        await participant._close()

    def _publications_changed(self, publisher: Participant) -> None:
        """Subscribe everyone else to the publisher's current publications, and
        record them if the room is recording."""
        for publication in publisher.publications.values():
            for other in self.participants.values():
                if other is not publisher and not other.closed:
                    other.subscribe(publication)
            if self._recorder is not None:
                self._recorder.add(publication)

    def _unpublish(self, publication: Publication) -> None:
        for other in self.participants.values():
            other.unsubscribe(publication)
        publication.close()

    def _replace_publications(
        self, publisher: Participant, old: list[Publication], new: list[Publication]
    ) -> None:
        """After a reconnect, re-point subscriptions from old to new publications
        (matched by kind, in m-line order) so subscribers need no renegotiation."""
        unmatched = list(new)
        for publication in old:
            match = next((p for p in unmatched if p.kind == publication.kind), None)
            for subscription in list(publication.subscriptions):
                if match is not None and subscription.publication.codec.mimeType == match.codec.mimeType:
                    subscription.restart(match)
                    match.subscriptions.append(subscription)
                else:
                    self.participants[subscription.subscriber_id].unsubscribe(publication)
            publication.subscriptions.clear()
            if match is not None:
                unmatched.remove(match)

    # -- recording -----------------------------------------------------------

    async def start_recording(self, path: str | Path) -> None:
        """Record the room's publications (encoded, as received) to ``path``.

        A relative path is placed under ``RelayConfig.recordings_dir``; ``.webm``
        gives WebM, anything else Matroska.  Tracks published after the start are
        recorded too: a publication that replaces one that ended (a reconnect, see
        :meth:`Participant.handle_offer`) continues its participant's track in the
        file, any other (a screen share, a later joiner) is a track of its own.
        The file is written when the recording stops (see ``media.recording``).
        """
        if self._recorder is not None:
            raise RelayError(f"{self} is already recording to {self._recorder.path}")
        path = Path(path)
        if not path.is_absolute():
            path = self.relay.config.recordings_dir / path
        publications = [
            p for participant in self.participants.values() for p in participant.publications.values()
        ]
        if not publications:
            raise RelayError(f"{self} has no published tracks to record")
        self._recorder = Recorder(path, publications)
        for publication in publications:
            await publication.request_keyframe(force=True)

    async def stop_recording(self) -> dict[str, int]:
        """Write the file; returns the number of frames written per track, keyed
        ``participant/kind/track id`` (a reconnect's frames count under the track
        id it continues)."""
        recorder, self._recorder = self._recorder, None
        if recorder is None:
            raise RelayError(f"{self} is not recording")
        try:
            return await recorder.close()
        except RecordingError as exc:
            raise RelayError(f"{self}: {exc}") from None

    @property
    def recording(self) -> bool:
        return self._recorder is not None

    def recording_frames(self) -> dict[str, int]:
        """Frames the running recording has written per track so far (empty when none runs)."""
        return self._recorder.frame_counts() if self._recorder is not None else {}

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._recorder is not None:
            try:
                await self.stop_recording()
            except RelayError as exc:
                logger.error("%s: %s", self, exc)
        for participant_id in list(self.participants):
            await self.leave(participant_id)
        self.relay._rooms.pop(self.id, None)


class Relay:
    """The SFU: a registry of rooms and of every peer connection it opened."""

    def __init__(self, config: RelayConfig) -> None:
        self.config = config
        self._rooms: dict[str, Room] = {}
        self._pcs: dict[RTCPeerConnection, str] = {}
        self.probes: set[Probe] = set()  # open network checks (media.probe)
        ice_hooks.install()  # before any of this relay's connections gathers candidates
        self.ice_policy = ice_hooks.IcePolicy(
            address_allowed=config.address_allowed, udp_ports=config.udp_ports
        )

    def room(self, room_id: str) -> Room:
        """The room with this id, created on first use."""
        room = self._rooms.get(room_id)
        if room is None:
            room = self._rooms[room_id] = Room(self, room_id)
        return room

    @property
    def rooms(self) -> dict[str, Room]:
        return dict(self._rooms)

    @property
    def peer_connections(self) -> dict[RTCPeerConnection, str]:
        """Open peer connections and their log prefixes."""
        return dict(self._pcs)

    def _register(self, pc: RTCPeerConnection, log_prefix: str) -> None:
        self._pcs[pc] = log_prefix

    async def _close_pc(self, pc: RTCPeerConnection) -> None:
        prefix = self._pcs.pop(pc, "[pc ?]")
        await pc.close()
        logger.info("%s closed", prefix)

    async def close(self) -> None:
        """Close every room and every peer connection."""
        for room in list(self._rooms.values()):
            await room.close()
        self.probes.clear()
        for pc in list(self._pcs):
            await self._close_pc(pc)
