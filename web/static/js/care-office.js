// The office's view of a care package: its visits today refetched from the server whenever a
// visit event arrives (a carer checks in or out, a visit is late or missed, the rota changes).
import { live } from "/static/js/live.js";

const root = document.querySelector("[data-visits-refresh]");
const REFRESH_ON = ["visit.checked_in", "visit.checked_out", "visit.late", "visit.missed", "visit.rota_changed"];

let refreshing = null;
let again = false;

async function refresh() {
  if (refreshing) { again = true; return refreshing; }
  refreshing = (async () => {
    try {
      const response = await fetch(root.dataset.visitsRefresh, { headers: { accept: "text/html" }, credentials: "same-origin" });
      if (response.ok) root.innerHTML = await response.text();
    } finally {
      refreshing = null;
      if (again) { again = false; refresh(); }
    }
  })();
  return refreshing;
}

if (root) {
  for (const type of REFRESH_ON) live.on(type, () => refresh());
  live.onResync(() => refresh());
}
