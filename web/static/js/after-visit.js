// After the visit, on the call page: the doctor writes the visit summary and offers a
// follow-up through the API without leaving the call; the patient sees each offer (and a
// published summary) as it arrives, with a link to book it. On the appointment page the
// same forms post as plain forms (no data-api) and this module leaves them alone.
import { problemMessage, sendJSON } from "/static/js/api.js";
import { live } from "/static/js/live.js";

async function api(method, url, body) {
  const response = await sendJSON(method, url, body);
  if (!response.ok) throw new Error((await problemMessage(response)) || response.statusText);
  return response.status === 204 ? null : response.json();
}

const when = (iso) => new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });

// The doctor's panel is shown with the call's stage or its end screen (not before joining).
function revealWith(panel) {
  const ids = (panel.dataset.revealWith || "").split(/\s+/).filter(Boolean);
  const targets = ids.map((id) => document.getElementById(id)).filter(Boolean);
  const update = () => { panel.hidden = !targets.some((t) => !t.hidden); };
  const observer = new MutationObserver(update);
  targets.forEach((t) => observer.observe(t, { attributes: true, attributeFilter: ["hidden"] }));
  update();
}

function summaryStatus(view) {
  if (view.published_at) {
    let text = `Published ${when(view.published_at)}`;
    if (view.updated_at) text += `; updated ${when(view.updated_at)}`;
    text += ". The patient can read it on the appointment page.";
    if (view.unpublished_changes) text += " You have changes the patient does not see yet.";
    return text;
  }
  return view.draft_saved_at ? `Draft saved ${when(view.draft_saved_at)}; the patient does not see it yet.` : "Not written yet.";
}

async function initSummary(form) {
  const url = `/api/v1/consultations/${form.dataset.appointment}/summary`;
  const text = form.querySelector("textarea");
  const status = form.querySelector("#summary-status");
  text.readOnly = true;  // until the saved draft is in: typing first would be overwritten
  try {
    const view = await api("GET", url);
    text.value = view.draft || "";
    status.textContent = summaryStatus(view);
  } catch (err) { status.textContent = `Could not load the summary: ${err.message}`; }
  finally { text.readOnly = false; }
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const publish = e.submitter?.value === "publish";
    status.textContent = publish ? "Publishing…" : "Saving…";
    try {
      const view = await api("PUT", url, { text: text.value, publish });
      status.textContent = summaryStatus(view);
    } catch (err) { status.textContent = `Not saved: ${err.message}`; }
  });
}

async function initFollowUp(forms) {
  const appointment = forms[0].dataset.appointment;
  const status = document.getElementById("follow-up-status");
  const select = document.getElementById("follow-up-slot");
  try {
    const { slots } = await api("GET", `/api/v1/appointments/${appointment}/follow-up-slots`);
    select.replaceChildren(...slots.map((s) => new Option(s.label, s.starts_at)));
    if (!slots.length) status.textContent = "You have no free times in the next four weeks; offer dates instead.";
  } catch (err) { status.textContent = `Your free times could not be loaded: ${err.message}`; }
  for (const form of forms) {
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const data = new FormData(form);
      const body = form.dataset.followUp === "slot"
        ? { starts_at: data.get("starts_at") }
        : { from_date: data.get("from_date"), until_date: data.get("until_date") };
      status.textContent = "Offering…";
      try {
        const offer = await api("POST", `/api/v1/appointments/${appointment}/follow-ups`, body);
        status.textContent = `Offered: ${offer.description}. The patient has been told.`;
      } catch (err) { status.textContent = `Not offered: ${err.message}`; }
    });
  }
}

function initNotices(panel) {
  const appointment = Number(panel.dataset.appointment);
  const list = document.getElementById("after-visit-list");
  const add = (id, build) => {
    if (list.querySelector(`[data-id="${CSS.escape(id)}"]`)) return;
    const li = document.createElement("li");
    li.dataset.id = id;
    build(li);
    list.append(li);
    panel.hidden = false;
  };
  const link = (href, text) => {
    const a = document.createElement("a");
    a.href = href;
    a.target = "_blank";  // the call goes on in this tab
    a.rel = "noopener";
    a.textContent = text;
    return a;
  };
  live.on("booking.follow_up_offered", async (event) => {
    if (event.data?.appointment_id !== appointment) return;
    try {
      const offer = await api("GET", `/api/v1/follow-ups/${event.data.offer_id}`);
      add(`offer-${offer.id}`, (li) => li.append(`Your doctor offers a follow-up: ${offer.description}. `,
        link(`/follow-ups/${offer.id}`, `Book it (${offer.fee_credits} credits)`)));
    } catch (err) { console.warn("follow-up offer not loaded", err); }
  });
  live.on("consultation.summary_published", (event) => {
    if (event.data?.appointment_id !== appointment) return;
    add(`summary-${event.data.version}`, (li) => li.append("Your doctor has published a summary of this visit. ",
      link(`/appointments/${appointment}#visit-summary`, "Read it on the appointment page")));
  });
}

const panel = document.getElementById("after-visit");
if (panel) revealWith(panel);
const summaryForm = document.querySelector("form[data-visit-summary][data-api]");
if (summaryForm) initSummary(summaryForm);
const offerForms = [...document.querySelectorAll("form[data-follow-up][data-api]")];
if (offerForms.length) initFollowUp(offerForms);
const notices = document.getElementById("after-visit-notices");
if (notices) initNotices(notices);
