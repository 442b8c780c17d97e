// Before joining and during the call: the camera and microphone (see and hear yourself,
// with a level meter), and the choice of camera, microphone and speaker.
import { $, state } from "./state.js";
import { replaceLocalTracks } from "./peer.js";
import { deviceProblem, noDevice } from "./problems.js";
import { warn } from "./ui.js";

let selects = null;
let meterContext = null;

// Wires the device pickers and starts the camera and microphone.
export function initDevices() {
  selects = { videoinput: $("camera-select"), audioinput: $("mic-select"), audiooutput: $("speaker-select") };
  selects.videoinput.addEventListener("change", acquire);
  selects.audioinput.addEventListener("change", acquire);
  selects.audiooutput.addEventListener("change", () => {
    state.speakerId = selects.audiooutput.value;
    document.querySelectorAll("#videos video, #videos audio").forEach((el) => el.setSinkId?.(state.speakerId));
  });
  navigator.mediaDevices.addEventListener?.("devicechange", listDevices);
  acquire();
}

// (Re)opens the chosen camera and microphone; in a call, the relay gets the new tracks. When
// both cannot be had together, each is tried alone: the call goes on with what works, and
// each device that failed gets its own message.
export async function acquire() {
  const wanted = {
    audio: selects.audioinput.value ? { deviceId: { exact: selects.audioinput.value } } : true,
    video: selects.videoinput.value ? { deviceId: { exact: selects.videoinput.value }, width: 640, height: 480 }
      : { width: 640, height: 480 },
  };
  const problems = [];
  const present = await presentKinds();
  const missing = ["audio", "video"].filter((kind) => present && !present.has(kind));
  if (missing.length) problems.push(noDevice(missing.length === 2 ? "both" : missing[0]));
  missing.forEach((kind) => delete wanted[kind]);
  let stream = null;
  if (wanted.audio && wanted.video) {
    try { stream = await navigator.mediaDevices.getUserMedia(wanted); } catch (err) {
      if (err.name === "NotAllowedError" || err.name === "SecurityError") problems.push(deviceProblem(err, "both"));
      else stream = await separately(wanted, problems);
    }
  } else if (wanted.audio || wanted.video) {
    stream = await separately(wanted, problems);
  }
  deviceWarning(problems.join(" "));
  if (!stream) return;
  if (state.local) state.local.getTracks().forEach((t) => t.stop());
  state.local = stream;
  $("preview").srcObject = stream;
  $("self-view").srcObject = stream;
  meter(stream);
  await listDevices();
  if (state.pc) replaceLocalTracks();
}

// Each wanted kind on its own; the tracks that could be had, in one stream (or null).
async function separately(wanted, problems) {
  const tracks = [];
  for (const kind of ["audio", "video"]) {
    if (!wanted[kind]) continue;
    try {
      tracks.push(...(await navigator.mediaDevices.getUserMedia({ [kind]: wanted[kind] })).getTracks());
    } catch (err) { problems.push(deviceProblem(err, kind)); }
  }
  return tracks.length ? new MediaStream(tracks) : null;
}

// The kinds ("audio", "video") the browser lists a device for; null if it cannot tell.
async function presentKinds() {
  try {
    const devices = await navigator.mediaDevices.enumerateDevices();
    return new Set(devices.map((d) => ({ audioinput: "audio", videoinput: "video" })[d.kind]).filter(Boolean));
  } catch { return null; }
}

function deviceWarning(text) {
  const el = $("device-warning");
  if (!el) return warn(text); // a variant of the call page without its own device warning
  el.textContent = text;
  el.hidden = !text;
}

async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  for (const [kind, select] of Object.entries(selects)) {
    const current = select.value;
    select.replaceChildren();
    devices.filter((d) => d.kind === kind).forEach((d, i) => {
      select.append(new Option(d.label || `${kind} ${i + 1}`, d.deviceId, false, d.deviceId === current));
    });
    select.disabled = select.options.length === 0;
  }
}

function meter(stream) {
  if (!stream.getAudioTracks().length) return;
  meterContext?.close();
  meterContext = new AudioContext();
  const analyser = meterContext.createAnalyser();
  meterContext.createMediaStreamSource(stream).connect(analyser);
  const data = new Uint8Array(analyser.fftSize);
  const tick = () => {
    if (meterContext?.state === "closed") return;
    analyser.getByteTimeDomainData(data);
    let peak = 0;
    for (const v of data) peak = Math.max(peak, Math.abs(v - 128) / 128);
    $("mic-level").value = peak;
    requestAnimationFrame(tick);
  };
  tick();
}
