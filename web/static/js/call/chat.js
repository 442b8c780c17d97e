// Chat (sent over the signalling socket, its history from the API), and the doctor's panel:
// encrypted notes saved as they are typed, the recordings (guest links: guests.js).
import { sendJSON } from "/static/js/api.js";
import { $ } from "./state.js";
import { send } from "./signalling.js";
import { warn } from "./ui.js";

let consultation = null;
let notesTimer = null;

// The consultation's REST API: the body of the answer, or an Error with the API's message.
async function api(method, path, body) {
  const response = await sendJSON(method, `/api/v1/consultations/${consultation}${path}`, body);
  const answer = response.status === 204 ? null : await response.json();
  if (!response.ok) throw new Error(answer?.error?.message || response.statusText);
  return answer;
}

export function initChat(appointment) {
  consultation = appointment;
  $("chat-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("chat-text").value.trim();
    if (!text) return;
    send({ type: "chat", text });
    $("chat-text").value = "";
  });

  // Read-only until the saved notes have loaded: typing first would be overwritten by them,
  // and the autosave would then store the old text over what was typed.
  if ($("notes")) $("notes").readOnly = true;
  $("notes")?.addEventListener("input", () => {
    $("notes-status").textContent = "Saving…";
    clearTimeout(notesTimer);
    notesTimer = setTimeout(async () => {
      try {
        await api("PUT", "/notes", { text: $("notes").value });
        $("notes-status").textContent = "Saved.";
      } catch (err) { $("notes-status").textContent = `Not saved: ${err.message}`; }
    }, 800);
  });
}

export function addChat(m) {
  if (document.querySelector(`#chat-log li[data-id="${CSS.escape(String(m.id))}"]`)) return;
  const li = document.createElement("li");
  li.dataset.id = m.id;
  const who = document.createElement("strong");
  who.textContent = `${m.name}: `;
  li.append(who, m.text);
  $("chat-log").append(li);
}

export async function loadChat() {
  try { (await api("GET", "/chat")).messages.forEach(addChat); } catch (err) { warn(err.message); }
}

export async function loadNotes() {
  try { $("notes").value = (await api("GET", "/notes")).text; } catch (err) { warn(err.message); }
  finally { $("notes").readOnly = false; }
}

export async function loadRecordings() {
  try {
    const list = $("recordings");
    list.replaceChildren();
    for (const r of (await api("GET", "/recordings")).recordings) {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = r.download_url;
      a.textContent = `Recording ${r.id} (${Math.round(r.size_bytes / 1024)} KiB)`;
      li.append(a);
      list.append(li);
    }
  } catch (err) { warn(err.message); }
}
