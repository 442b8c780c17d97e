// JSON requests to CareTrack's own API, carrying the page's CSRF token (the server refuses an
// unsafe method without it). Every page script that talks JSON goes through here:
//
//   import { postJSON, sendJSON, problemMessage } from "/static/js/api.js";
//   const response = await postJSON("/api/v1/...", { some: "body" });
//   if (!response.ok) show((await problemMessage(response)) || response.status);
//
// Both return fetch's Response (and reject only when the network fails, as fetch does).

export function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]')?.content || "";
}

// method, url, an optional body (sent as JSON) and optional extra headers.
export function sendJSON(method, url, body, headers = {}) {
  return fetch(url, {
    method,
    credentials: "same-origin",
    headers: { "content-type": "application/json", "x-csrf-token": csrfToken(), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

export const postJSON = (url, body, headers) => sendJSON("POST", url, body, headers);

// The message of the API's error body ({"error": {"message": ...}}), if it has one.
export async function problemMessage(response) {
  return (await response.json().catch(() => null))?.error?.message;
}
