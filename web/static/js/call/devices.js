// Before joining and during the call: the camera and microphone (see and hear yourself,
// with a level meter), and the choice of camera, microphone and speaker.
import { $, state } from "./state.js";
import { replaceLocalTracks } from "./peer.js";
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

// (Re)opens the chosen camera and microphone; in a call, the relay gets the new tracks.
export async function acquire() {
  const constraints = {
    audio: selects.audioinput.value ? { deviceId: { exact: selects.audioinput.value } } : true,
    video: selects.videoinput.value ? { deviceId: { exact: selects.videoinput.value }, width: 640, height: 480 }
      : { width: 640, height: 480 },
  };
  try {
    const stream = await navigator.mediaDevices.getUserMedia(constraints);
    if (state.local) state.local.getTracks().forEach((t) => t.stop());
    state.local = stream;
    $("preview").srcObject = stream;
    $("self-view").srcObject = stream;
    meter(stream);
    warn("");
    await listDevices();
    if (state.pc) replaceLocalTracks();
  } catch (err) {
    warn(`Your camera or microphone could not be used (${err.name}). Check that no other app is using it and that this site may use it.`);
  }
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
