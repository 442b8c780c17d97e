import "./live.js"; // every signed-in page: live updates and the quiet "reconnecting" state

// CareTrack's page bootstrap: small progressive enhancements shared by every page.

// Single-use links carry their token in the URL fragment (never sent to the server or
// written to logs); move it into the form that needs it and clean the address bar.
const tokenInput = document.querySelector("input[data-token-from-fragment]");
if (tokenInput && location.hash.length > 1) {
  tokenInput.value = decodeURIComponent(location.hash.slice(1));
  history.replaceState(null, "", location.pathname + location.search);
  const form = tokenInput.form;
  if (form && form.hasAttribute("data-autosubmit")) form.requestSubmit();
}
import "./unread-badge.js"; // the unread-messages count in the navigation
