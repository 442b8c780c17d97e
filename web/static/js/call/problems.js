// What the call page says when the browser cannot do a call: an origin that is not a secure
// context (no camera, microphone or screen share there), and each way a camera or a
// microphone can fail. Messages say what happened and what to do about it.

// Why calls cannot work on this page ({title, text, operator}), or null. Browsers only offer
// camera and microphone (navigator.mediaDevices) on HTTPS and on localhost.
export function cannotCall() {
  if (window.isSecureContext && navigator.mediaDevices?.getUserMedia && window.RTCPeerConnection) return null;
  if (window.isSecureContext) {
    return {
      title: "This browser cannot make calls",
      text: "This browser cannot make video calls: it offers no camera, microphone or WebRTC to web pages.",
      operator: "Open this page in a current Chrome, Edge, Firefox or Safari.",
    };
  }
  const port = location.port ? `:${location.port}` : "";
  return {
    title: "Calls need a secure connection",
    text: `Calls need a secure connection (HTTPS). This page was opened at ${location.origin}, `
      + "where the browser does not let any site use a camera or microphone, so the call cannot start.",
    operator: `For whoever runs this CareTrack: serve it over HTTPS, behind a TLS proxy (nginx, Caddy…), `
      + "and set CARETRACK_BASE_URL to its https:// address. To try calls on the computer running it, "
      + `open http://localhost${port}${location.pathname} instead.`,
  };
}

const DEVICE = { audio: "microphone", video: "camera", both: "camera and microphone" };

// The message for a getUserMedia failure; `which` is "audio", "video" or "both".
export function deviceProblem(err, which = "both") {
  const device = DEVICE[which];
  const it = which === "both" ? "them" : "it";
  switch (err?.name) {
    case "NotAllowedError":
    case "PermissionDeniedError":
    case "SecurityError":
      return `This site is not allowed to use your ${device}. Allow ${it} in the browser's site settings `
        + "(the camera icon in the address bar), then reload the page.";
    case "NotFoundError":
    case "DevicesNotFoundError":
      return `No ${device} was found. Plug one in or switch it on, then choose it below.`;
    case "NotReadableError":
    case "TrackStartError":
      return `Your ${device} could not be started: another app (a call, a recorder) may be using ${it}. `
        + `Close that app, then choose the ${device} again below.`;
    case "OverconstrainedError":
    case "ConstraintNotSatisfiedError":
      return `The chosen ${device} is not available any more${err.constraint ? ` (${err.constraint})` : ""}. `
        + "Choose another one below.";
    case "AbortError":
      return `Your ${device} stopped while it was starting. Choose it again below, or restart the browser.`;
    default:
      return `Your ${device} could not be used (${err?.name || "error"}: ${err?.message || "unknown"}).`;
  }
}

// The message when the browser lists no device of a kind ("audio", "video" or "both") at all.
export const noDevice = (kind) => `No ${kind === "both" ? "camera or microphone" : DEVICE[kind]} was found on this device. `
  + { video: "Others will hear you but not see you.", audio: "Others will see you but not hear you.",
      both: "You can still join: you will see and hear the others, but they will not see or hear you." }[kind];
