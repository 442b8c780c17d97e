// The office's view of a care package: each live section (today's visits, the notes and
// incidents, the figures) is refetched from the server when one of the events it names arrives
// (data-live-section: its URL; data-live-events: the event types), and after a resync.
import { live } from "/static/js/live.js";

function section(root) {
  let refreshing = null;
  let again = false;
  async function refresh() {
    if (refreshing) { again = true; return refreshing; }
    refreshing = (async () => {
      try {
        const response = await fetch(root.dataset.liveSection, { headers: { accept: "text/html" }, credentials: "same-origin" });
        if (response.ok) root.innerHTML = await response.text();
      } finally {
        refreshing = null;
        if (again) { again = false; refresh(); }
      }
    })();
    return refreshing;
  }
  for (const type of (root.dataset.liveEvents || "").split(/\s+/).filter(Boolean)) live.on(type, () => refresh());
  live.onResync(() => refresh());
}

document.querySelectorAll("[data-live-section]").forEach(section);
