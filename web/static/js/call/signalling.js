// The signalling socket: the versioned protocol of the `signalling` package over /ws/signal.
// A dropped socket reconnects with backoff and jitter; a refusal or a normal close does not.
import { state } from "./state.js";
import { setLive, warn } from "./ui.js";

const VERSION = 1;
// Closes after which the page does not reconnect: normal, replaced, and the refusals.
const FINAL_CODES = [1000, 4000, 4401, 4403, 4409];

export function send(message) {
  if (state.socket?.readyState === WebSocket.OPEN) state.socket.send(JSON.stringify({ v: VERSION, ...message }));
}

export function closeSocket() {
  state.socket?.close(1000);
}

// Joins `consultation`, and again after every drop. on.message(message) handles what the server
// sends (it returns a promise); on.refused(reason) is told when the server will not have us
// (not after our own close or a replaced socket); on.dropped() before each reconnect.
export function connect(consultation, on) {
  // A guest's seat is their invitation (a cookie), not an account: say which one this socket is.
  const seat = state.guest ? "?seat=guest" : "";
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/signal${seat}`;
  const socket = new WebSocket(url);
  state.socket = socket;
  socket.addEventListener("open", () => {
    state.wsAttempt = 0;
    send({ type: "join", consultation });
  });
  socket.addEventListener("message", (e) => {
    let message;
    try { message = JSON.parse(e.data); } catch { return; }
    on.message(message).catch((err) => console.error("signalling", message.type, err));
  });
  socket.addEventListener("close", (e) => {
    if (state.socket !== socket) return;
    if (state.ended || FINAL_CODES.includes(e.code)) {
      if (!state.ended && e.code !== 4000) on.refused(e.reason || "You cannot join this consultation.");
      return;
    }
    warn("The connection to the server dropped; reconnecting…");
    setLive("Reconnecting…");
    on.dropped();
    const delay = Math.min(15000, 500 * 2 ** state.wsAttempt++) * (0.5 + Math.random() / 2);
    setTimeout(() => connect(consultation, on), delay);
  });
}
