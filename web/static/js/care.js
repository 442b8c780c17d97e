// The carer's dashboard: tasks logged in place (two taps, with a client-generated
// idempotency key so a retry after a lost connection is recorded once), visits checked in
// and out with the phone's location when it gives one, and the "today" section refetched
// from the server whenever an event says it changed.
import { postJSON, problemMessage } from "/static/js/api.js";
import { live } from "/static/js/live.js";

const root = document.querySelector("[data-live-refresh]");
const REFRESH_ON = ["task.assigned", "task.updated", "task.removed", "task.completed", "task.missed",
  "care.package_assigned", "care.package_unassigned", "assessment.assigned", "assessment.result",
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

async function send(url, body, attempts = 4) {
  let delay = 400;
  for (let i = 0; ; i++) {
    try {
      return await postJSON(url, body, { accept: "application/json" });
    } catch (err) {  // the network dropped: retry with the same key, so it counts once
      if (i + 1 >= attempts) throw err;
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay *= 2;
    }
  }
}

// Devices' clocks drift: the server takes up to 5 minutes ahead as "now" (care.service.FUTURE_GRACE).
const FUTURE_GRACE_MS = 5 * 60 * 1000;

function latestAt(time) {
  // A time of day (UTC) means its latest occurrence up to now, as the server's log form does:
  // 23:50 entered just after midnight is last night's visit, not one tonight (refused as future).
  if (!time) return null;
  const now = new Date();
  const [hours, minutes] = time.split(":").map(Number);
  const when = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), hours, minutes));
  if (when - now > FUTURE_GRACE_MS) when.setUTCDate(when.getUTCDate() - 1);
  return when.toISOString().replace(".000Z", "+00:00");
}

async function logTask(form, submitter) {
  const taskId = form.dataset.logTask;
  // One key per intended completion: kept on the form until the server confirms it.
  if (!form.dataset.key) form.dataset.key = newKey();
  const reason = submitter?.name === "reason" ? submitter.value : null;
  const body = {
    idempotency_key: form.dataset.key,
    status: reason ? "not_done" : "done",
    reason,
    note: form.elements.note?.value || null,
    occurred_at: latestAt(form.elements.time?.value),
  };
  const buttons = form.querySelectorAll("button");
  buttons.forEach((b) => { b.disabled = true; });
  try {
    const response = await send(`/api/v1/care/tasks/${taskId}/completions`, body);
    if (response.ok) {
      delete form.dataset.key;
      await refresh();
      document.querySelector(`#task-${taskId}`)?.classList.add("new");
      return;
    }
    const message = await problemMessage(response);
    delete form.dataset.key;
    alertIn(form, message || `Could not log this task (${response.status}).`);
  } catch {
    alertIn(form, "No connection. Your tap is kept: try again and it will be recorded once.");
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
  for (const type of REFRESH_ON) live.on(type, () => refresh());
  live.onResync(() => refresh());
}
