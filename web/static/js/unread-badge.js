// The unread-messages badge beside "Messages" in the navigation, on every signed-in page. The
// server renders the count; a message sent to this user, or read by them in another tab,
// refetches it (the events carry no per-user count).
import { live } from "/static/js/live.js";

const badge = document.querySelector("[data-unread-badge]");
let pending = null;

async function refresh() {
  pending = null;
  try {
    const response = await fetch("/api/v1/messages/unread", { headers: { accept: "application/json" }, credentials: "same-origin" });
    if (!response.ok) return;
    const { unread } = await response.json();
    badge.textContent = String(unread);
    badge.setAttribute("aria-label", `${unread} unread`);
    badge.hidden = unread === 0;
  } catch (err) {
    console.warn("unread count refresh failed", err);
  }
}

const soon = () => { if (!pending) pending = setTimeout(refresh, 50); };

if (badge) {
  live.on("message.sent", soon);
  live.on("message.read", soon);
  live.onResync(soon);
}
