// What the call page shows that is not media: warnings, the reconnecting status, the people
// (names on tiles, the doctor's lobby), the waiting room, the quality badge, the end screen.
import { $, state } from "./state.js";

export function warn(text) {
  const el = $("call-warning");
  el.textContent = text;
  el.hidden = !text;
}

export function setLive(text) {
  const el = document.getElementById("live-status");
  if (el) { el.textContent = text; el.hidden = !text; }
}

// --- the people in the call ----------------------------------------------------------------
const names = new Map();
const nameOf = (participant) => names.get(participant) || "Participant";

// A video tile's caption: whose it is, and whether it is their screen.
export const captionOf = (participant, info) => nameOf(participant) + (info.track === "screen" ? " (screen)" : "");

export function renderParticipants(list) {
  for (const p of list) names.set(p.participant, p.name);
  document.querySelectorAll(".tile[data-participant] figcaption").forEach((caption) => {
    const tile = caption.parentElement;
    const info = state.tracksByMid.get(tile.dataset.mid) || {};
    caption.textContent = captionOf(tile.dataset.participant, info);
  });
}

// The doctor's list of who is waiting; admit(participant) lets one in.
export function renderLobby(waiting, admit) {
  const list = $("lobby-list");
  list.replaceChildren();
  if (!waiting.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = "Nobody is waiting.";
    list.append(li);
    return;
  }
  for (const w of waiting) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `Admit ${w.name}`;
    button.addEventListener("click", () => admit(w.participant));
    li.append(`${w.name} (${w.role}) `, button);
    list.append(li);
  }
}

// --- the call's stages: before joining, waiting, in the call, ended ----------------------------
export function showWaiting(hostPresent) {
  $("waiting").hidden = false;
  $("waiting-text").textContent = hostPresent
    ? "The doctor knows you are here and will let you in shortly."
    : "The doctor has not joined yet. Please wait here.";
}

export function showStage(role) {
  $("waiting").hidden = true;
  $("stage").hidden = false;
  if (role === "host") $("lobby").hidden = false;
}

export function showEnded(text) {
  warn("");  // the end screen says why; the server's last error said the same
  $("stage").hidden = true;
  $("waiting").hidden = true;
  $("prejoin").hidden = true;
  $("ended").hidden = false;
  $("ended-text").textContent = text;
}

export function showQuality(quality) {
  const badge = $("quality");
  badge.textContent = quality;
  badge.className = `badge ${quality.startsWith("good") ? "ok" : quality.startsWith("fair") ? "warn" : quality.startsWith("poor") ? "bad" : ""}`;
}
