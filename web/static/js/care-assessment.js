// Taking an assessment: answers are saved as they change, so an interrupted session
// (closed tab, lost signal) resumes where it stopped. The buttons still work without this.
import { postJSON, problemMessage } from "/static/js/api.js";

const form = document.getElementById("assessment-form");
const status = document.getElementById("autosave-status");

function answers() {
  const out = {};
  for (const block of form.querySelectorAll("[data-question]")) {
    const id = block.dataset.question;
    const kind = block.dataset.kind;
    if (kind === "multiple") {
      out[id] = [...block.querySelectorAll("input:checked")].map((i) => Number(i.value));
    } else if (kind === "single") {
      const checked = block.querySelector("input:checked");
      out[id] = checked ? Number(checked.value) : null;
    } else {
      out[id] = block.querySelector("textarea").value;
    }
  }
  return out;
}

let timer = null;

async function save() {
  timer = null;
  try {
    const response = await postJSON(form.dataset.autosave, { answers: answers(), submit: false });
    status.textContent = response.ok ? `Saved at ${new Date().toLocaleTimeString()}` : "Not saved: " +
      ((await problemMessage(response)) || response.status);
  } catch {
    status.textContent = "Offline: your answers will be saved when you are back.";
  }
}

if (form && status && form.dataset.autosave) {
  const schedule = () => { clearTimeout(timer); timer = setTimeout(save, 600); };
  form.addEventListener("change", schedule);
  form.addEventListener("input", schedule);
  window.addEventListener("online", schedule);
}
