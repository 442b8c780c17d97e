// The one RTCPeerConnection with the relay, which forwards everyone else's media. The relay
// is the impolite peer: when offers collide this page rolls its own back. After an ICE drop
// that does not heal by itself, a fresh connection (new ICE) is opened.
import { $, state } from "./state.js";
import { send } from "./signalling.js";
import { captionOf, markTile, setLive, showQuality, warn } from "./ui.js";

export function openPeer() {
  closePeer();
  const pc = new RTCPeerConnection({ iceServers: state.iceServers });
  state.pc = pc;
  state.tracksByMid.clear();
  state.local?.getTracks().forEach((track) => pc.addTrack(track, state.local));
  // Without a camera or microphone this page still offers, to see and hear the others.
  if (!state.local?.getTracks().length) pc.addTransceiver("audio", { direction: "recvonly" });
  if (state.screen) state.screen.getTracks().forEach((track) => pc.addTrack(track, state.screen));
  pc.addEventListener("negotiationneeded", () => offer(pc));
  pc.addEventListener("track", (e) => showTrack(e));
  pc.addEventListener("iceconnectionstatechange", () => {
    const s = pc.iceConnectionState;
    if (s === "connected" || s === "completed") {
      state.everConnected = true;
      clearTimeout(state.reconnectTimer);
      setLive("");
      warn("");
    } else if (s === "disconnected" || s === "failed") {
      setLive("Reconnecting…");
      clearTimeout(state.reconnectTimer);
      // A brief blip heals itself; past that, a fresh connection (new ICE) with the relay.
      state.reconnectTimer = setTimeout(() => {
        if (state.pc === pc && !state.ended) openPeer();
      }, s === "failed" ? 0 : 3000);
    }
  });
}

export function closePeer() {
  if (!state.pc) return;
  state.pc.close();
  state.pc = null;
  for (const tile of state.tiles.values()) tile.remove();
  state.tiles.clear();
}

async function waitForCandidates(pc) {
  if (pc.iceGatheringState === "complete") return;
  await new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 3000);
  });
}

async function offer(pc) {
  if (pc !== state.pc || state.makingOffer) return;
  try {
    state.makingOffer = true;
    await pc.setLocalDescription();
    await waitForCandidates(pc);
    if (pc === state.pc && pc.signalingState === "have-local-offer") {
      send({ type: "offer", sdp: pc.localDescription.sdp });
    }
  } finally {
    state.makingOffer = false;
  }
}

// The relay's offer, with what each of its m-lines carries ({mid: {participant, track}}).
// `tracks` lists every m-line the relay sends on now: a tile whose m-line is not in it any
// more (a screen share stopped, someone left) goes.
export async function onRemoteOffer(sdp, tracks) {
  state.tracksByMid = new Map(Object.entries(tracks));
  const pc = state.pc;
  if (!pc) return;
  // The relay wins collisions: setRemoteDescription rolls back our pending offer.
  await pc.setRemoteDescription({ type: "offer", sdp });
  removeTiles((mid) => !state.tracksByMid.has(mid));
  await pc.setLocalDescription();
  await waitForCandidates(pc);
  if (pc === state.pc) send({ type: "answer", sdp: pc.localDescription.sdp });
  // Anything of ours the rollback undid is offered again.
  if (pc.getTransceivers().some((t) => t.sender.track && !t.mid)) offer(pc);
}

export async function onRemoteAnswer(sdp) {
  if (state.pc && state.pc.signalingState === "have-local-offer") {
    await state.pc.setRemoteDescription({ type: "answer", sdp });
  }
}

// The camera or microphone changed: the relay gets the new tracks without renegotiating.
export function replaceLocalTracks() {
  for (const sender of state.pc.getSenders()) {
    const fresh = state.local.getTracks().find((t) => sender.track && t.kind === sender.track.kind && !isScreen(sender.track));
    if (fresh) sender.replaceTrack(fresh);
  }
}

const isScreen = (track) => state.screen?.getTracks().includes(track);

// Removes the tiles (video and audio) that `stale(mid, tile)` picks.
export function removeTiles(stale) {
  for (const [mid, tile] of state.tiles) {
    if (stale(mid, tile)) { tile.remove(); state.tiles.delete(mid); }
  }
}

function showTrack(e) {
  const mid = e.transceiver.mid;
  const info = state.tracksByMid.get(mid) || {};
  const participant = info.participant || e.streams[0]?.id || "someone";
  const key = `${mid}`;
  state.tiles.get(key)?.remove();
  let tile;
  if (e.track.kind === "audio") {
    tile = document.createElement("audio");
    tile.autoplay = true;
    tile.srcObject = new MediaStream([e.track]);
    if (state.speakerId) tile.setSinkId?.(state.speakerId);
    tile.hidden = true;
    tile.dataset.participant = participant;
    tile.dataset.mid = mid;
    $("videos").append(tile);
  } else {
    tile = document.createElement("figure");
    tile.className = "tile";
    tile.dataset.participant = participant;
    tile.dataset.mid = mid;
    const video = document.createElement("video");
    video.autoplay = true;
    video.playsInline = true;
    video.muted = true;
    video.srcObject = new MediaStream([e.track]);
    const caption = document.createElement("figcaption");
    caption.textContent = captionOf(participant, info);
    tile.append(video, caption);
    markTile(tile);
    $("videos").append(tile);
  }
  state.tiles.set(key, tile);
  e.track.addEventListener("ended", () => { if (state.tiles.get(key) === tile) removeTiles((mid) => mid === key); });
}

// --- quality ---------------------------------------------------------------------------------
// The videos this page decodes (the browser tests read it through window.caretrackCall).
export async function inboundVideo() {
  if (!state.pc) return [];
  const stats = await state.pc.getStats();
  const out = [];
  stats.forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "video") out.push({ mid: s.mid, framesDecoded: s.framesDecoded || 0 }); });
  return out;
}

// Every 2 s: round-trip time and packet loss, shown as good, fair or poor.
export function watchQuality() {
  setInterval(async () => {
    if (!state.pc) return;
    const stats = await state.pc.getStats();
    let rtt = null; let lost = 0; let received = 0;
    stats.forEach((s) => {
      if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime !== undefined) rtt = s.currentRoundTripTime;
      if (s.type === "inbound-rtp") { lost += s.packetsLost || 0; received += s.packetsReceived || 0; }
    });
    const loss = received ? lost / (lost + received) : 0;
    const quality = rtt === null ? "connecting…" : (loss > 0.05 || rtt > 0.4) ? "poor connection"
      : (loss > 0.01 || rtt > 0.15) ? "fair connection" : "good connection";
    showQuality(quality);
  }, 2000);
}
