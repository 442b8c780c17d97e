// The carer's dashboard (and the admins' incidents page): tasks logged in place (two taps, with a
// client-generated idempotency key so a retry after a lost connection is recorded once, and the
// moment of the tap, so a tap made offline keeps its time), visits checked in and out with the
// phone's location when it gives one, and the "today" section (or a client's record) refetched
// from the server whenever an event says it changed. Times are on the package's clock
// (data-time-zone).
import { postJSON, problemMessage } from "/static/js/api.js";
import { live } from "/static/js/live.js";

const root = document.querySelector("[data-live-refresh]");
// A page may name its own events (data-live-events, space-separated), as the incidents page does.
const REFRESH_ON = root?.dataset.liveEvents?.split(/\s+/).filter(Boolean) ?? [
  "task.assigned", "task.updated", "task.removed", "task.completed", "task.missed",
  "care.package_assigned", "care.package_unassigned", "care.package_updated", "care.package_ended",
  "care.package_archived", "care.package_unarchived", "care.carer_removed", "care.carer_replaced",
  "care.note", "assessment.assigned", "assessment.result",
  "visit.checked_in", "visit.checked_out", "visit.late", "visit.missed", "visit.rota_changed"];

function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID().replaceAll("-", "");
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

let refreshing = null;
let again = false;

async function refresh() {
  if (!root) return;
  if (refreshing) { again = true; return refreshing; }
  refreshing = (async () => {
    try {
      const response = await fetch(root.dataset.liveRefresh, { headers: { accept: "text/html" }, credentials: "same-origin" });
      if (response.status === 404) {  // taken off this client, or the package archived: show nothing of it
        const note = document.createElement("p");
        note.className = "flash";
        note.setAttribute("role", "status");
        note.textContent = "This client's record is no longer open to you.";
        root.replaceChildren(note);
        return;
      }
      if (!response.ok) return;
      const html = await response.text();
      const open = [...root.querySelectorAll("details[open]")].map((d) => d.closest("[data-task-id]")?.dataset.taskId);
      root.innerHTML = html;
      for (const id of open) {
        const details = id && root.querySelector(`[data-task-id="${id}"] details`);
        if (details) details.open = true;
      }
      root.dispatchEvent(new CustomEvent("care:refreshed", { bubbles: true }));
    } finally {
      refreshing = null;
      if (again) { again = false; refresh(); }
    }
  })();
  return refreshing;
}

// Devices' clocks drift: the server takes up to 5 minutes ahead as "now" (care.service.FUTURE_GRACE).
const FUTURE_GRACE_MS = 5 * 60 * 1000;
const MINUTE_MS = 60 * 1000;

// --- the package's clock (caretrack.care.zones, in the browser) ------------------------------

function wallParts(instant, zone) {
  // The wall clock in `zone` at `instant`, as numbers.
  const parts = new Intl.DateTimeFormat("en-GB", {
    timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit",
  }).formatToParts(instant);
  const get = (type) => Number(parts.find((p) => p.type === type).value);
  return { year: get("year"), month: get("month"), day: get("day"), minutes: get("hour") * 60 + get("minute") };
}

function offsetMs(instant, zone) {
  const w = wallParts(instant, zone);
  const asUtc = Date.UTC(w.year, w.month - 1, w.day, 0, w.minutes);
  return asUtc - Math.floor(instant.getTime() / MINUTE_MS) * MINUTE_MS;
}

function wallInstant(day, minutes, zone) {
  // The instant of `minutes` after midnight on the package's `day`, read as the server reads
  // it: a wall time that happens twice is the first; one in a spring-forward gap takes the
  // offset from before the change.
  const naive = Date.UTC(day.year, day.month - 1, day.day, 0, minutes);
  const before = offsetMs(new Date(naive - 3 * 3600 * 1000), zone);
  const after = offsetMs(new Date(naive + 3 * 3600 * 1000), zone);
  const fits = [naive - before, naive - after].filter((t) => {
    const w = wallParts(new Date(t), zone);
    return Date.UTC(w.year, w.month - 1, w.day, 0, w.minutes) === naive;
  });
  return new Date(fits.length ? Math.min(...fits) : naive - before);
}

function latestAt(time, zone, tapped) {
  // A time of day on the package's clock means its latest occurrence up to the tap, as the
  // server's log form does: 23:50 entered just after midnight is last night's visit, not one
  // tonight (refused as future).
  const [hours, minutes] = time.split(":").map(Number);
  const today = wallParts(tapped, zone);
  let when = wallInstant(today, hours * 60 + minutes, zone);
  if (when - tapped > FUTURE_GRACE_MS) {
    const yesterday = new Date(Date.UTC(today.year, today.month - 1, today.day - 1));
    when = wallInstant({ year: yesterday.getUTCFullYear(), month: yesterday.getUTCMonth() + 1,
      day: yesterday.getUTCDate() }, hours * 60 + minutes, zone);
  }
  return when;
}

const iso = (instant) => instant.toISOString().replace(".000Z", "+00:00");

// A phone's clock can be off: a tap's moment is the phone's clock corrected by how far it was
// from the server's when the day was last fetched (data-server-now), so the server reads it on
// its own clock.
let clockOffsetMs = 0;

function syncClock() {
  const serverNow = Date.parse(root?.querySelector("[data-server-now]")?.dataset.serverNow || "");
  if (!Number.isNaN(serverNow)) clockOffsetMs = serverNow - Date.now();
}

const serverNow = () => new Date(Date.now() + clockOffsetMs);

// --- taps waiting for the network ------------------------------------------------------------
// Each tap is one completion with its own key and the moment it was made. Sent at once, the
// server's clock stamps it; one that has to wait (no network, or the server failing) is sent
// with its moment as `occurred_at`, which the server bounds (7 days back, 5 minutes ahead).
// It waits here until the server has answered it (kept in memory only: a note is a client's
// health information, so nothing is written to the device's storage), and is sent again with
// the same key, so a request that reached the server before the connection dropped counts once.

const pending = [];
const failed = [];  // refused by the server: shown once on the task, then forgotten
let flushing = null;
let retryTimer = null;
let retryDelay = 1000;

function waitForNetwork() {
  // Whatever now waits is sent later: from here on it carries the moment it was tapped.
  for (const entry of pending) entry.body.occurred_at ??= iso(entry.tapped);
  clearTimeout(retryTimer);
  retryTimer = setTimeout(() => flush(), retryDelay);
  retryDelay = Math.min(retryDelay * 2, 30000);
}

async function flush() {
  if (flushing) return flushing;
  flushing = (async () => {
    clearTimeout(retryTimer);
    const sent = new Set();
    try {
      while (pending.length) {
        const entry = pending[0];
        let response;
        try {
          response = await postJSON(entry.url, entry.body, { accept: "application/json" });
        } catch {  // no network: keep it, try again when the browser is back online (or soon)
          waitForNetwork();
          return;
        }
        if (response.status >= 500) { waitForNetwork(); return; }  // the server is struggling: same key later
        pending.shift();
        retryDelay = 1000;
        if (response.ok) {
          sent.add(entry.taskId);
        } else {
          const message = await problemMessage(response);
          entry.error = message || `Could not log this task (${response.status}).`;
          failed.push(entry);
        }
      }
    } finally {
      flushing = null;
      if (sent.size) await refresh().catch(() => {});
      for (const id of sent) document.querySelector(`#task-${id}`)?.classList.add("new");
      showState();
    }
  })();
  return flushing;
}

function showState() {
  if (!root) return;
  for (const el of root.querySelectorAll("[data-pending-note]")) el.remove();
  const waiting = new Map();
  for (const entry of pending) waiting.set(entry.taskId, [...(waiting.get(entry.taskId) || []), entry]);
  for (const [taskId, entries] of waiting) {
    const form = root.querySelector(`form[data-log-task="${taskId}"]`);
    if (!form) continue;
    const note = document.createElement("p");
    note.className = "flash";
    note.dataset.pendingNote = "";
    note.setAttribute("role", "status");
    const times = entries.map((e) => e.tappedWall).join(", ");
    note.textContent = `No connection: ${entries.length === 1 ? "your tap" : `${entries.length} taps`} at ${times} `
      + "kept on this phone, and sent with that time when you are back online.";
    form.prepend(note);
  }
  while (failed.length) {
    const entry = failed.shift();
    const form = root.querySelector(`form[data-log-task="${entry.taskId}"]`);
    if (form) alertIn(form, entry.error);
  }
}

async function logTask(form, submitter) {
  const taskId = form.dataset.logTask;
  const zone = form.dataset.timeZone || "UTC";
  const tapped = serverNow();  // the moment of the tap, whenever the request finally goes
  const reason = submitter?.name === "reason" ? submitter.value : null;
  const time = form.elements.time?.value;
  const when = time ? latestAt(time, zone, tapped) : tapped;
  const wall = wallParts(when, zone);
  pending.push({
    taskId,
    tapped,
    url: `/api/v1/care/tasks/${taskId}/completions`,
    tappedWall: `${String(Math.floor(wall.minutes / 60)).padStart(2, "0")}:${String(wall.minutes % 60).padStart(2, "0")}`,
    body: {
      idempotency_key: newKey(),
      status: reason ? "not_done" : "done",
      reason,
      note: form.elements.note?.value || null,
      note_for_office: Boolean(form.elements.note_for_office?.checked),
      note_for_next_carer: Boolean(form.elements.note_for_next_carer?.checked),
      occurred_at: time ? iso(when) : null,
    },
  });
  form.querySelector(".flash-error")?.remove();
  const buttons = form.querySelectorAll("button");
  buttons.forEach((b) => { b.disabled = true; });  // one tap, one completion: no double taps
  try {
    await flush();
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

function alertIn(form, text) {
  let el = form.querySelector(".flash-error");
  if (!el) {
    el = document.createElement("p");
    el.className = "flash flash-error";
    el.setAttribute("role", "alert");
    form.prepend(el);
  }
  el.textContent = text;
}

// Where the phone is, if it will say within a few seconds; null when refused, unavailable or slow
// (a check-in never waits on it or fails for want of it).
function position() {
  if (!navigator.geolocation) return Promise.resolve(null);
  return new Promise((resolve) => {
    const done = (value) => { clearTimeout(timer); resolve(value); };
    const timer = setTimeout(() => resolve(null), 8000);
    navigator.geolocation.getCurrentPosition(
      (p) => done({ latitude: p.coords.latitude, longitude: p.coords.longitude,
                    accuracy: Math.min(Math.max(p.coords.accuracy ?? 0, 0), 100000) }),
      () => done(null),
      { enableHighAccuracy: true, timeout: 7000, maximumAge: 60000 });
  });
}

// A check-in or check-out, retried a few times if the network drops (a repeat is recorded once).
async function send(url, body, attempts = 4) {
  let delay = 400;
  for (let i = 0; ; i++) {
    try {
      return await postJSON(url, body, { accept: "application/json" });
    } catch (err) {
      if (i + 1 >= attempts) throw err;
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay *= 2;
    }
  }
}

async function checkVisit(form) {
  const action = form.dataset.visitAction;  // "check-in" | "check-out"
  const buttons = form.querySelectorAll("button");
  buttons.forEach((b) => { b.disabled = true; });
  try {
    const body = { on_date: form.elements.on_date.value, ...((await position()) || {}) };
    // A repeat is answered with the first check-in or check-out, so a retry is safe.
    const response = await send(`/api/v1/care/rota/${form.dataset.entry}/${action}`, body);
    if (response.ok) { await refresh(); return; }
    alertIn(form, (await problemMessage(response)) || `Could not ${action.replace("-", " ")} (${response.status}).`);
  } catch {
    alertIn(form, "No connection. Try again: a repeat is recorded once.");
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

if (root) {
  root.addEventListener("submit", (event) => {
    const visit = event.target.closest("form[data-visit-action]");
    if (visit && window.fetch) {
      event.preventDefault();
      checkVisit(visit);
      return;
    }
    const form = event.target.closest("form[data-log-task]");
    if (!form || !window.fetch) return;
    event.preventDefault();
    logTask(form, event.submitter);
  });
  syncClock();
  root.addEventListener("care:refreshed", () => { syncClock(); showState(); });
  for (const type of REFRESH_ON) live.on(type, () => refresh());
  live.onResync(() => refresh());
  window.addEventListener("online", () => { retryDelay = 1000; flush(); });
}
