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

// A participant's shared screen is the track whose id they named (screen_share).
const screens = new Map(); // participant -> the track id of their shared screen
const isScreenTile = (participant, info) => Boolean(info.track) && screens.get(participant) === info.track;

// A video tile's caption: whose it is, and whether it is their screen.
export const captionOf = (participant, info) => nameOf(participant) + (isScreenTile(participant, info) ? " (screen)" : "");

// Everyone in the call, with their microphone and camera state; the set of their ids.
export function renderParticipants(list) {
  for (const p of list) {
    names.set(p.participant, p.name);
    media.set(p.participant, { audio: p.audio, video: p.video });
    screens.set(p.participant, p.screen ? p.screen_track : null);
  }
  document.querySelectorAll(".tile[data-participant]").forEach(markTile);
  return new Set(list.map((p) => p.participant));
}

// A participant started or stopped sharing their screen.
export function setScreen(participant, active, track) {
  screens.set(participant, active ? track : null);
  document.querySelectorAll(`.tile[data-participant="${CSS.escape(participant)}"]`).forEach(markTile);
}

// --- microphone and camera of the others ------------------------------------------------------
const media = new Map(); // participant -> { audio, video }: what they send, as they said

// A participant muted or turned their camera off (or back on).
export function setMediaState(participant, audio, video) {
  media.set(participant, { audio, video });
  document.querySelectorAll(`.tile[data-participant="${CSS.escape(participant)}"]`).forEach(markTile);
}

// A video tile's caption, and whether its participant's microphone and camera are off (not
// on a screen-share tile: that has no microphone and its camera is the screen).
export function markTile(tile) {
  const info = state.tracksByMid.get(tile.dataset.mid) || {};
  const participant = tile.dataset.participant;
  const caption = tile.querySelector("figcaption");
  if (caption) caption.textContent = captionOf(participant, info);
  const { audio = true, video = true } = isScreenTile(participant, info) ? {} : media.get(participant) || {};
  let flags = tile.querySelector(".tile-flags");
  if (!flags) {
    flags = document.createElement("p");
    flags.className = "tile-flags";
    tile.append(flags);
  }
  flags.replaceChildren(...[!audio && "Microphone off", !video && "Camera off"].filter(Boolean).map((text) => {
    const badge = document.createElement("span");
    badge.className = "badge bad";
    badge.textContent = text;
    return badge;
  }));
  flags.hidden = audio && video;
  tile.classList.toggle("camera-off", !video);
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

// No call is possible here (no secure context, or no WebRTC): the page says why and what to do.
export function showCannotCall({ title, text, operator }) {
  $("prejoin").hidden = true;
  if (!$("cannot-call")) return warn(`${text} ${operator}`);
  $("cannot-call").hidden = false;
  $("cannot-call-title").textContent = title;
  $("cannot-call-text").textContent = text;
  $("cannot-call-operator").textContent = operator;
}

export function showQuality(quality) {
  const badge = $("quality");
  badge.textContent = quality;
  badge.className = `badge ${quality.startsWith("good") ? "ok" : quality.startsWith("fair") ? "warn" : quality.startsWith("poor") ? "bad" : ""}`;
}
