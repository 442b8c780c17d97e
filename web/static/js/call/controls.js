// The call's buttons: mute, camera, screen share, recording consent, leave, end (the doctor).
import { $, state } from "./state.js";
import { send } from "./signalling.js";
import { warn } from "./ui.js";

// finish(text) ends the call on this page (the leave button).
export function initControls({ role, finish }) {
  toggle($("mute-button"), "audio");
  toggle($("camera-button"), "video");
  $("share-button").addEventListener("click", share);

  $("consent-box").addEventListener("change", (e) => send({ type: "recording_consent", granted: e.target.checked }));

  $("leave-button").addEventListener("click", () => {
    send({ type: "leave" });
    finish("You left the consultation. You can rejoin from this page while it is open.");
  });
  $("end-button")?.addEventListener("click", () => {
    if (confirm("End the consultation for everyone?")) send({ type: "end" });
  });
}

function toggle(button, kind) {
  button.addEventListener("click", () => {
    const off = button.getAttribute("aria-pressed") !== "true";
    button.setAttribute("aria-pressed", String(off));
    state.local?.getTracks().filter((t) => t.kind === kind).forEach((t) => { t.enabled = !off; });
    button.textContent = off ? (kind === "audio" ? "Unmute" : "Camera on") : (kind === "audio" ? "Mute" : "Camera off");
    send(mediaState());
  });
}

// This page's microphone and camera as the others should see them (a media_state message).
export const mediaState = () => ({
  type: "media_state",
  audio: $("mute-button").getAttribute("aria-pressed") !== "true" && hasTrack("audio"),
  video: $("camera-button").getAttribute("aria-pressed") !== "true" && hasTrack("video"),
});

const hasTrack = (kind) => Boolean(state.local?.getTracks().some((t) => t.kind === kind && t.readyState === "live"));

async function share() {
  if (state.screen) return stopShare();
  try {
    state.screen = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
  } catch (err) {
    warn(`Screen sharing did not start (${err.name}).`);
    return;
  }
  const [track] = state.screen.getVideoTracks();
  track.addEventListener("ended", stopShare);
  state.pc?.addTrack(track, state.screen);
  $("share-button").setAttribute("aria-pressed", "true");
  $("share-button").textContent = "Stop sharing";
  const id = await sdpTrackId(state.pc, track);
  if (state.screen?.getVideoTracks().includes(track)) send({ type: "screen_share", active: true, track: id });
}

// The id the others' pages know `track` by: the one in this page's SDP (a=msid). Browsers put
// the sender's id there, which is the track's id only when addTrack made a new transceiver,
// not when it reused one the relay had offered; so it is read once the offer is made.
async function sdpTrackId(pc, track) {
  for (let tries = 0; pc && tries < 50; tries++) {
    const mid = pc.getTransceivers().find((t) => t.sender.track === track)?.mid;
    const section = mid && pc.localDescription?.sdp.split(/\r\n(?=m=)/).find((m) => m.includes(`\r\na=mid:${mid}\r\n`));
    const msid = section?.match(/\r\na=msid:\S+ (\S+)/);
    if (msid) return msid[1];
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return track.id;
}

function stopShare() {
  if (!state.screen) return;
  const tracks = state.screen.getTracks();
  state.pc?.getSenders().filter((s) => tracks.includes(s.track)).forEach((s) => state.pc.removeTrack(s));
  tracks.forEach((t) => t.stop());
  state.screen = null;
  $("share-button").setAttribute("aria-pressed", "false");
  $("share-button").textContent = "Share screen";
  send({ type: "screen_share", active: false });
}
