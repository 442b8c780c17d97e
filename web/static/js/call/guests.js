// The doctor's guest links on the call page: create one (role and label), list them with
// their state (open, used by whom, revoked, expired), revoke one. And, for everyone, who the
// recording still waits for.
import { problemMessage, sendJSON } from "/static/js/api.js";
import { $ } from "./state.js";
import { warn } from "./ui.js";

const STATUS = { open: "not opened yet", used: "opened", revoked: "revoked", expired: "expired" };
let base = "";

async function call(method, path, body) {
  const response = await sendJSON(method, `${base}${path}`, body);
  if (!response.ok) throw new Error((await problemMessage(response)) || response.statusText);
  return response.json();
}

export function initGuests(appointment) {
  base = `/api/v1/consultations/${appointment}/guest-invites`;
  $("guest-form")?.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const { link } = await call("POST", "", { role: $("guest-role").value, label: $("guest-label").value });
      $("guest-link").textContent = link;
      $("guest-label").value = "";
      await loadGuests();
    } catch (err) { warn(err.message); }
  });
}

export async function loadGuests() {
  const list = $("guest-invites");
  if (!list) return;
  try {
    const { invites } = await call("GET", "");
    list.replaceChildren(...invites.map((invite) => {
      const li = document.createElement("li");
      li.dataset.invite = invite.id;
      const who = invite.display_name ? `: ${invite.display_name}` : "";
      li.append(`${invite.label} (${invite.role}) — ${STATUS[invite.status]}${who} `);
      if (invite.status === "open" || invite.status === "used") {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "secondary";
        button.textContent = `Revoke ${invite.label}`;
        button.addEventListener("click", async () => {
          try { await call("DELETE", `/${invite.id}`); await loadGuests(); } catch (err) { warn(err.message); }
        });
        li.append(button);
      }
      return li;
    }));
  } catch (err) { warn(err.message); }
}

// The recording message: nobody is recorded until everyone in the call has agreed.
export function showConsents(message) {
  const missing = (message.missing || []).map((p) => p.name);
  $("consent-missing").textContent = !message.on && missing.length
    ? `Recording needs the consent of: ${missing.join(", ")}.` : "";
}
