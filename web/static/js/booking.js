// Booking pages: a region marked data-live-refresh="type1 type2" is re-fetched from the
// server (the same URL, the same template) when one of those live events arrives, so the
// page never shows state the server would not render. data-refresh-url names the page to
// fetch when the current address is a form's POST target.
import { live } from "/static/js/live.js";

async function refresh(region) {
  try {
    const url = region.dataset.refreshUrl || location.pathname + location.search;
    const response = await fetch(url, { credentials: "same-origin", headers: { accept: "text/html" } });
    if (!response.ok) return;
    const html = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = html.getElementById(region.id);
    if (fresh) {
      region.replaceChildren(...fresh.childNodes);
      region.dataset.refreshed = String(Number(region.dataset.refreshed || "0") + 1);
    }
  } catch (err) {
    console.warn("refresh failed", err);
  }
}

for (const region of document.querySelectorAll("[data-live-refresh][id]")) {
  let timer = null;
  const soon = () => { clearTimeout(timer); timer = setTimeout(() => refresh(region), 50); };
  for (const type of region.dataset.liveRefresh.split(/\s+/).filter(Boolean)) live.on(type, soon);
  live.onResync(soon);
}
