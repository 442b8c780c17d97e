// The consultation call page: device check, waiting room, one RTCPeerConnection with the
// relay (which forwards everyone else's media), chat, notes, recording consent, screen
// share, a quality indicator, and reconnection after a network drop.
//
// This is the entry point; its parts are the modules in call/:
//   state.js       the shared state            signalling.js  the /ws/signal socket
//   devices.js     camera, microphone, speaker peer.js        the connection with the relay
//   controls.js    the call's buttons          chat.js        chat, notes, recordings
//   guests.js      the doctor's guest links, who recording waits for
//   ui.js          warnings, people, stages, the quality badge
//   problems.js    no secure context, device failures   netcheck.js  the pre-call network check
// Signalling speaks the versioned protocol of the `signalling` package over /ws/signal.
import { addChat, initChat, loadChat, loadNotes, loadRecordings } from "./call/chat.js";
import { initControls, mediaState } from "./call/controls.js";
import { initGuests, loadGuests, showConsents } from "./call/guests.js";
import { acquire, initDevices } from "./call/devices.js";
import { initNetworkCheck } from "./call/netcheck.js";
import { closePeer, inboundVideo, onRemoteAnswer, onRemoteOffer, openPeer, removeTiles, watchQuality } from "./call/peer.js";
import { cannotCall } from "./call/problems.js";
import { closeSocket, connect, send } from "./call/signalling.js";
import { $, state } from "./call/state.js";
import { renderLobby, renderParticipants, setMediaState, setScreen, showCannotCall, showEnded, showStage, showWaiting, warn } from "./call/ui.js";

const root = document.getElementById("call");

if (root) start();

function start() {
  const appointment = root.dataset.appointment;
  const role = root.dataset.role;
  state.guest = role === "guest";
  window.caretrackCall = { state, inboundVideo };
  const unable = cannotCall();
  if (unable) return showCannotCall(unable);

  initDevices();
  initNetworkCheck(appointment);
  $("join-button").addEventListener("click", () => {
    $("join-button").disabled = true;
    connect(appointment, { message: handle, refused: finish, dropped: closePeer });
  });
  initControls({ role, finish });
  initChat(appointment);
  initGuests(appointment);
  watchQuality();

  async function handle(message) {
    switch (message.type) {
      case "welcome":
        state.iceServers = (message.ice_servers || []).map((s) => ({ urls: s.urls, username: s.username, credential: s.credential }));
        $("prejoin").hidden = true;
        if (message.admitted) await admitted();
        break;
      case "waiting":
        showWaiting(message.host_present);
        break;
      case "admitted":
        await admitted();
        break;
      case "lobby":
        renderLobby(message.waiting || [], (participant) => send({ type: "admit", participant }));
        loadGuests(); // a guest in the lobby has opened their link
        break;
      case "offer":
        await onRemoteOffer(message.sdp, message.tracks || {});
        break;
      case "answer":
        await onRemoteAnswer(message.sdp);
        break;
      case "participants": {
        const present = renderParticipants(message.participants || []);
        removeTiles((mid, tile) => !present.has(tile.dataset.participant));
        break;
      }
      case "media_state":
        setMediaState(message.participant, message.audio, message.video);
        break;
      case "screen_share":
        setScreen(message.participant, message.active, message.track);
        break;
      case "chat":
        addChat(message);
        break;
      case "recording":
        $("recording-banner").hidden = !message.on;
        showConsents(message);
        break;
      case "error":
        if (message.code !== 4400 || message.about !== "answer") warn(message.message);
        break;
      case "ended":
        finish(message.reason || "The doctor ended the consultation.");
        break;
      case "ping":
        send({ type: "pong" });
        break;
    }
  }

  async function admitted() {
    state.admitted = true;
    showStage(role);
    if (role === "host") { loadNotes(); loadRecordings(); loadGuests(); }
    if (role !== "guest") loadChat(); // a guest sees no chat from before they joined
    if (!state.local) await acquire();
    send(mediaState()); // the others see this page's microphone and camera as they are
    openPeer();
  }
}

// The call is over on this page: everything is closed and the end screen says why.
function finish(text) {
  state.ended = true;
  closePeer();
  closeSocket();
  state.local?.getTracks().forEach((t) => t.stop());
  state.screen?.getTracks().forEach((t) => t.stop());
  showEnded(text);
}
