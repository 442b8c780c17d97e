// One message thread, live: a message sent to it is fetched and appended without a reload
// (the event carries ids only, never the text), the sender's "Sent" turns to "Read" when the
// other side opens the thread, and the send form posts JSON when it carries no files (with
// files it posts the form itself, and the page reloads).
import { postJSON, problemMessage } from "/static/js/api.js";
import { live } from "/static/js/live.js";

const root = document.getElementById("thread");
const threadList = document.querySelector("[data-thread-list]");

// The list of conversations (/messages): refetched from the server when one of them changes.
if (threadList) {
  let timer = null;
  const refresh = async () => {
    timer = null;
    try {
      const response = await fetch(location.pathname, { headers: { accept: "text/html" }, credentials: "same-origin" });
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html").querySelector("[data-thread-list]");
      if (fresh) threadList.innerHTML = fresh.innerHTML;
    } catch (err) {
      console.warn("conversation list refresh failed", err);
    }
  };
  const soon = () => { if (!timer) timer = setTimeout(refresh, 50); };
  for (const type of ["message.sent", "message.read", "message.thread_changed"]) live.on(type, soon);
  live.onResync(soon);
}

function formatter(zone) {
  try {
    return new Intl.DateTimeFormat("en-GB", { timeZone: zone, day: "2-digit", month: "short", year: "numeric",
      hour: "2-digit", minute: "2-digit", hour12: false });
  } catch { return new Intl.DateTimeFormat("en-GB", { timeZone: "UTC", dateStyle: "medium", timeStyle: "short" }); }
}

function messageItem(m, show) {
  const li = document.createElement("li");
  li.className = m.mine ? "message mine new" : "message new";
  li.dataset.messageId = String(m.id);
  li.dataset.mine = m.mine ? "true" : "false";
  const meta = document.createElement("p");
  meta.className = "meta";
  const who = document.createElement("strong");
  who.textContent = m.mine ? "You" : m.sender_name;
  const time = document.createElement("time");
  time.dateTime = m.sent_at;
  time.textContent = show.format(new Date(m.sent_at)).replace(" at ", ", ");
  meta.append(who, " ", time);
  li.append(meta);
  if (m.text) {
    const text = document.createElement("p");
    text.className = "text";
    text.textContent = m.text;
    li.append(text);
  }
  if (m.attachments.length) {
    const list = document.createElement("ul");
    list.className = "attachments";
    for (const f of m.attachments) {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = f.download_url;
      link.textContent = f.name;
      item.append(link);
      list.append(item);
    }
    li.append(list);
  }
  if (m.mine) {
    const receipt = document.createElement("p");
    receipt.className = "receipt muted";
    receipt.dataset.receipt = "";
    receipt.textContent = m.read_at ? `Read ${show.format(new Date(m.read_at)).replace(" at ", ", ")}` : "Sent";
    li.append(receipt);
  }
  return li;
}

if (root) {
  const threadId = Number(root.dataset.thread);
  const list = document.getElementById("messages");
  const show = formatter(root.dataset.tz || "UTC");
  let last = Number(root.dataset.last || "0");
  let running = null;
  let again = false;

  // In id order, once each. Only what fetchNew got moves `last`: a message of ours, answered to
  // the send, may overtake one of theirs whose event is still on its way.
  const append = (m, advance = true) => {
    if (!list.querySelector(`[data-message-id="${m.id}"]`)) {
      const later = [...list.children].find((li) => Number(li.dataset.messageId) > m.id);
      list.insertBefore(messageItem(m, show), later || null);
      document.getElementById("messages-empty")?.remove();
    }
    if (advance) {
      last = Math.max(last, m.id);
      root.dataset.last = String(last);
    }
  };

  const fetchNew = async () => {
    if (running) { again = true; return running; }
    running = (async () => {
      try {
        // Nothing shown yet: the newest page (ids start at 1, so there is no "after 0").
        const url = `/api/v1/messages/threads/${threadId}?limit=100${last ? `&after=${last}` : ""}`;
        const response = await fetch(url, { headers: { accept: "application/json" }, credentials: "same-origin" });
        if (!response.ok) return;
        const page = await response.json();
        page.messages.forEach((m) => append(m));
      } finally {
        running = null;
        if (again) { again = false; fetchNew(); }
      }
    })();
    return running;
  };

  const markRead = (upTo, readAt) => {
    for (const li of list.querySelectorAll('[data-mine="true"]')) {
      if (Number(li.dataset.messageId) > upTo) continue;
      const receipt = li.querySelector("[data-receipt]");
      if (receipt && receipt.textContent === "Sent") {
        receipt.textContent = `Read ${show.format(new Date(readAt)).replace(" at ", ", ")}`;
      }
    }
  };

  live.on("message.sent", (event) => { if (event.data.thread_id === threadId) fetchNew(); });
  live.on("message.read", (event) => {
    if (event.data.thread_id === threadId && event.actor_id !== Number(root.dataset.me)) {
      markRead(event.data.up_to, event.data.read_at);
    }
  });
  live.on("message.thread_changed", (event) => { if (event.data.thread_id === threadId) location.reload(); });
  live.onResync(() => location.reload());

  const form = document.getElementById("send-form");
  const error = document.getElementById("send-error");
  form?.addEventListener("submit", async (event) => {
    if (form.elements.attachments?.files.length) return;  // multipart: the form posts itself
    event.preventDefault();
    const textarea = form.elements.text;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    error.hidden = true;
    try {
      const response = await postJSON(`/api/v1/messages/threads/${threadId}/messages`, { text: textarea.value },
        { accept: "application/json" });
      if (response.ok) {
        append(await response.json(), false);
        textarea.value = "";
        return;
      }
      error.textContent = (await problemMessage(response)) || `Could not send (${response.status}).`;
      error.hidden = false;
    } catch {
      error.textContent = "No connection; your message is still here, send it again.";
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
}
