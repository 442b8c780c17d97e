// The pre-call network check: a short-lived peer connection with the call server's media
// relay (the same ICE path, ports and TURN servers the call will use), over which small
// numbered packets are echoed back. Unordered and never retransmitted, so a lost packet
// stays lost: the check measures the round trip and the loss, and says it in words.
//
// Signalling: a socket on /ws/signal whose first message is `probe` (instead of `join`);
// the server answers `probe_ready` with the ICE servers, then the page's `offer` gets an
// `answer`. Nothing joins the consultation: the doctor does not see a network check.
import { $, state } from "./state.js";

const VERSION = 1;
export const PACKETS = 20;
const GAP_MS = 50; // between packets
const LATE_MS = 1500; // an echo later than this after the last packet counts as lost
const CONNECT_MS = 10000;
const POOR_RTT_MS = 300;
const POOR_LOSS = 0.05;

// The verdict in words from what was measured.
export function verdict({ rtts, sent }) {
  if (!rtts.length) {
    return { quality: "unreachable", text: "Can't reach the call server: none of the test packets came back." };
  }
  const rtt = Math.round([...rtts].sort((a, b) => a - b)[Math.floor(rtts.length / 2)]);
  const loss = (sent - rtts.length) / sent;
  const lossText = loss ? `${Math.round(loss * 100)}% of test packets lost` : "no test packets lost";
  const measured = `round trip ${rtt} ms, ${lossText}`;
  if (rtt > POOR_RTT_MS || loss > POOR_LOSS) {
    return { quality: "poor", text: `Poor: ${measured}. Video may freeze or break up; a wired or stronger `
      + "connection, or closing other downloads, will help.", rtt, loss };
  }
  return { quality: "good", text: `Good: ${measured}.`, rtt, loss };
}

// Runs the check for `consultation`; resolves to {quality, text, rtt?, loss?}.
export async function checkNetwork(consultation) {
  // a guest is known by their invitation's seat, as the call's own socket is (signalling.js)
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/signal${state.guest ? "?seat=guest" : ""}`;
  let socket = null;
  let pc = null;
  try {
    socket = await opened(new WebSocket(url));
    const messages = inbox(socket);
    socket.send(JSON.stringify({ v: VERSION, type: "probe", consultation }));
    const ready = await messages.next("probe_ready");
    pc = new RTCPeerConnection({ iceServers: (ready.ice_servers || []).map((s) => ({ urls: s.urls, username: s.username, credential: s.credential })) });
    const channel = pc.createDataChannel("network-check", { ordered: false, maxRetransmits: 0 });
    await pc.setLocalDescription();
    await gathered(pc);
    socket.send(JSON.stringify({ v: VERSION, type: "offer", sdp: pc.localDescription.sdp }));
    const answer = await messages.next("answer");
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    try {
      await channelOpen(channel, pc);
    } catch (err) {
      return { quality: "unreachable", text: `Can't reach the call server: ${err.message}` };
    }
    return verdict(await echoes(channel));
  } catch (err) {
    return { quality: "unreachable", text: `Can't reach the call server: ${err.message}` };
  } finally {
    pc?.close();
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000);
  }
}

function opened(socket) {
  return new Promise((resolve, reject) => {
    socket.addEventListener("open", () => resolve(socket), { once: true });
    socket.addEventListener("error", () => reject(new Error("the connection to the server failed.")), { once: true });
  });
}

// The server's messages in order; next(type) waits for one of that type, and fails with the
// server's reason if it sends an error or closes first.
function inbox(socket) {
  const waiting = [];
  let failure = null;
  const fail = (reason) => {
    failure = failure || new Error(reason);
    waiting.splice(0).forEach((w) => w.reject(failure));
  };
  socket.addEventListener("message", (e) => {
    let message;
    try { message = JSON.parse(e.data); } catch { return; }
    if (message.type === "ping") socket.send(JSON.stringify({ v: VERSION, type: "pong" }));
    else if (message.type === "error") fail(`${message.message}.`);
    else waiting.filter((w) => w.type === message.type).forEach((w) => { waiting.splice(waiting.indexOf(w), 1); w.resolve(message); });
  });
  socket.addEventListener("close", (e) => fail(e.reason ? `${e.reason}.` : "the server closed the connection."));
  return {
    next: (type) => (failure ? Promise.reject(failure) : new Promise((resolve, reject) => waiting.push({ type, resolve, reject }))),
  };
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    pc.addEventListener("icegatheringstatechange", () => { if (pc.iceGatheringState === "complete") resolve(); });
    setTimeout(resolve, 3000);
  });
}

function channelOpen(channel, pc) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(
      "no network path for the call's audio and video. A firewall may block it (UDP); "
      + "the operator can add a TURN server (CARETRACK_TURN_URLS).")), CONNECT_MS);
    channel.addEventListener("open", () => { clearTimeout(timer); resolve(); }, { once: true });
    pc.addEventListener("iceconnectionstatechange", () => {
      if (pc.iceConnectionState === "failed") {
        clearTimeout(timer);
        reject(new Error("no network path for the call's audio and video (the connection failed). A firewall "
          + "may block it (UDP); the operator can add a TURN server (CARETRACK_TURN_URLS)."));
      }
    });
  });
}

// Sends PACKETS numbered packets and collects the round trip of each one that comes back.
async function echoes(channel) {
  const sentAt = new Map();
  const rtts = [];
  channel.addEventListener("message", (e) => {
    const seq = Number(e.data);
    if (sentAt.has(seq)) { rtts.push(performance.now() - sentAt.get(seq)); sentAt.delete(seq); }
  });
  for (let seq = 0; seq < PACKETS; seq++) {
    sentAt.set(seq, performance.now());
    channel.send(String(seq));
    await new Promise((r) => setTimeout(r, GAP_MS));
  }
  const deadline = performance.now() + LATE_MS;
  while (sentAt.size && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return { rtts, sent: PACKETS };
}

// The check's place on the page: run once now, and again on "Check again".
export function initNetworkCheck(consultation) {
  const button = $("network-button");
  if (!button) return; // a variant of the call page without the check
  const run = async () => {
    button.disabled = true;
    $("network-verdict").textContent = "Checking…";
    $("network-verdict").className = "badge";
    const result = await checkNetwork(consultation);
    $("network-verdict").textContent = result.text;
    $("network-verdict").className = `badge ${{ good: "ok", poor: "warn", unreachable: "bad" }[result.quality]}`;
    $("network-check").dataset.quality = result.quality;
    button.disabled = false;
  };
  button.addEventListener("click", run);
  run();
}
