// Live updates: one socket per page to /ws/events. Resumes from the last sequence this tab
// saw (sessionStorage, per user), reconnects with backoff and jitter, drops duplicates,
// and dispatches events to the page's components:
//
//   import { live } from "/static/js/live.js";
//   live.on("booking.created", (event, seq) => { ... });   // returns an unsubscribe function
//   live.onAny((event, seq) => { ... });
//   live.onResync(() => { /* history is gone: refetch this page's state */ });
//
// Declarative component: <ol data-live-feed="/api/v1/events" data-after="42" data-kind="booking">
// prepends the caller's newer events (rendered by the server's API) as they arrive.

const STATUS_DELAY_MS = 1500;   // stay quiet about blips shorter than this
const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 30000;
const FINAL_CODES = new Set([4401, 4403]);  // session ended, account deactivated

const handlers = new Map();   // type -> Set(handler)
const anyHandlers = new Set();
const resyncHandlers = new Set();

let socket = null;
let userId = null;
let lastSeq = null;
let attempt = 0;
let retryTimer = null;
let statusTimer = null;
let stopped = false;

const storageKey = (id) => `caretrack.live.seq.${id}`;

function readStored(id) {
  try {
    const value = sessionStorage.getItem(storageKey(id));
    return value !== null && /^\d+$/.test(value) ? Number(value) : null;
  } catch { return null; }
}

function store(seq) {
  lastSeq = seq;
  try { if (userId !== null) sessionStorage.setItem(storageKey(userId), String(seq)); } catch { /* private mode */ }
}

function setStatus(text) {
  const el = document.getElementById("live-status");
  if (!el) return;
  el.textContent = text || "";
  el.hidden = !text;
  document.documentElement.dataset.live = text ? "offline" : "online";
}

function call(set, ...args) {
  for (const handler of [...set]) {
    try { handler(...args); } catch (err) { console.error("live handler failed", err); }
  }
}

function dispatch(seq, event) {
  if (lastSeq !== null && seq <= lastSeq) return;  // a duplicate (replay overlapping live)
  store(seq);
  const typed = handlers.get(event.type);
  if (typed) call(typed, event, seq);
  call(anyHandlers, event, seq);
}

function onMessage(raw) {
  let message;
  try { message = JSON.parse(raw.data); } catch { return; }
  switch (message.type) {
    case "hello":
      userId = message.user_id;
      if (lastSeq === null) lastSeq = readStored(userId);
      socket.send(JSON.stringify({ type: "resume", after: lastSeq }));
      if (lastSeq === null) store(message.seq);
      connected();
      break;
    case "event":
      dispatch(message.seq, message.event);
      break;
    case "resync":
      store(message.seq);
      call(resyncHandlers);
      break;
    case "ping":
      socket.send(JSON.stringify({ type: "pong" }));
      break;
    default:
      break;  // newer servers may send more; ignore what we do not know
  }
}

function connected() {
  attempt = 0;
  clearTimeout(statusTimer);
  statusTimer = null;
  setStatus("");
}

function scheduleReconnect() {
  if (stopped || retryTimer) return;
  const cap = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** attempt);
  const delay = cap / 2 + Math.random() * cap / 2;  // jitter spreads a herd of reconnects
  attempt += 1;
  if (!statusTimer) statusTimer = setTimeout(() => setStatus("Reconnecting…"), STATUS_DELAY_MS);
  retryTimer = setTimeout(() => { retryTimer = null; connect(); }, delay);
}

function connect() {
  if (stopped || (socket && socket.readyState <= WebSocket.OPEN)) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws/events`);
  socket = ws;
  ws.addEventListener("message", onMessage);
  ws.addEventListener("close", (event) => {
    if (socket !== ws) return;
    socket = null;
    if (FINAL_CODES.has(event.code)) {
      stopped = true;
      clearTimeout(statusTimer);
      setStatus("Live updates stopped: sign in again to resume.");
      return;
    }
    scheduleReconnect();
  });
}

export const live = {
  on(type, handler) {
    if (!handlers.has(type)) handlers.set(type, new Set());
    handlers.get(type).add(handler);
    return () => handlers.get(type).delete(handler);
  },
  onAny(handler) {
    anyHandlers.add(handler);
    return () => anyHandlers.delete(handler);
  },
  onResync(handler) {
    resyncHandlers.add(handler);
    return () => resyncHandlers.delete(handler);
  },
  get lastSeq() { return lastSeq; },
  get connected() { return socket !== null && socket.readyState === WebSocket.OPEN; },
};

// --- the declarative feed component ---------------------------------------------------------

function feedItem(item) {
  const li = document.createElement("li");
  li.dataset.seq = String(item.seq);
  li.dataset.type = item.type;
  li.className = "new";
  const time = document.createElement("time");
  time.dateTime = item.occurred_at;
  time.textContent = `${item.occurred_at.slice(0, 19).replace("T", " ")} UTC`;
  const badge = document.createElement("span");
  badge.className = "badge";
  badge.textContent = item.kind_label;
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = item.text;
  li.append(time, " ", badge, " ", text);
  return li;
}

function liveFeed(list) {
  let after = Number(list.dataset.after || "0");
  let pending = null;
  let running = false;
  const refresh = async () => {
    if (running) { pending = pending || setTimeout(tick, 100); return; }
    running = true;
    try {
      const url = new URL(list.dataset.liveFeed, location.origin);
      url.searchParams.set("after", String(after));
      url.searchParams.set("limit", "200");
      if (list.dataset.kind) url.searchParams.set("kind", list.dataset.kind);
      const response = await fetch(url, { headers: { accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) return;
      const page = await response.json();
      for (const item of page.items) {  // oldest first: each goes on top
        if (item.seq <= after || list.querySelector(`[data-seq="${item.seq}"]`)) continue;
        list.prepend(feedItem(item));
        after = Math.max(after, item.seq);
      }
      if (page.items.length) document.getElementById("activity-empty")?.remove();
      list.dataset.after = String(after);
    } catch (err) {
      console.warn("live feed refresh failed", err);
    } finally {
      running = false;
    }
  };
  const tick = () => { pending = null; refresh(); };
  live.onAny(() => { if (!pending) pending = setTimeout(tick, 50); });
  live.onResync(() => refresh());
}

if (document.body && document.body.dataset.role) {
  document.querySelectorAll("[data-live-feed]").forEach(liveFeed);
  window.addEventListener("online", () => { clearTimeout(retryTimer); retryTimer = null; connect(); });
  connect();
}
