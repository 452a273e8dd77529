// The incident page: each form or button sends one change; the page reloads when it is applied.
"use strict";
(function () {
  const page = document.getElementById("incident");
  const id = page.dataset.incidentId;
  let proposed = null;

  async function send(kind, details) {
    const result = await window.arc.post("/api/incidents/" + id + "/work", { kind, details });
    window.arc.refusal(result);
    if (result.ok) location.reload();
  }

  document.querySelectorAll("button[data-kind]").forEach((b) =>
    b.addEventListener("click", () => send(b.dataset.kind, {})));

  document.querySelectorAll("form.step-done").forEach((f) => f.addEventListener("submit", (e) => {
    e.preventDefault();
    send("step_done", { step: Number(f.dataset.step), outcome: f.outcome.value });
  }));

  document.querySelectorAll("form.step-waive").forEach((f) => f.addEventListener("submit", async (e) => {
    e.preventDefault();
    const result = await window.arc.post("/api/incidents/" + id + "/waive",
      { step: Number(f.dataset.waive), reason: f.reason.value });
    window.arc.refusal(result);
    if (result.ok) location.reload();
  }));

  document.querySelectorAll("form.call").forEach((f) => f.addEventListener("submit", (e) => {
    e.preventDefault();
    send("note", { text: f.dataset.call + ": " + f.outcome.value, call: { keyholder: f.dataset.call, outcome: f.outcome.value } });
  }));

  const note = document.getElementById("note-form");
  if (note) note.addEventListener("submit", (e) => { e.preventDefault(); send("note", { text: note.text.value }); });

  const close = document.getElementById("close-form");
  if (close) close.addEventListener("submit", (e) => {
    e.preventDefault();
    const details = { resolution: close.resolution.value };
    if (close.cause.value) details.cause = close.cause.value;
    send("close", details);
  });

  const dispatch = document.getElementById("dispatch-form");
  if (dispatch) {
    fetch("/api/incidents/" + id + "/proposal", { credentials: "same-origin" }).then((r) => r.json()).then((data) => {
      const choice = document.getElementById("guard-choice");
      choice.replaceChildren(...data.proposals.map((p, n) => {
        const o = document.createElement("option");
        o.value = p.staff_id;
        o.textContent = (n === 0 ? "★ " : "") + p.name + (p.distance_m != null ? " · " + p.distance_m + " m" : "") + " · " + p.load;
        return o;
      }));
      proposed = data.proposals.length ? data.proposals[0].staff_id : null;
      document.getElementById("excluded").replaceChildren(...data.excluded.map((x) => {
        const li = document.createElement("li");
        li.textContent = x.name + ": " + x.reason;
        return li;
      }));
    });
    dispatch.addEventListener("submit", (e) => {
      e.preventDefault();
      const guard = dispatch.guard.value;
      const details = { guard };
      if (guard !== proposed) { details.override = proposed; details.reason = dispatch.reason.value; }
      send("dispatch", details);
    });
  }

  // Someone else changed it (a guard arrived, a signal joined): show it.
  const stream = new EventSource("/api/queue/stream");
  stream.addEventListener("incident", (e) => {
    const change = JSON.parse(e.data);
    if (change.incident_id === id && change.status !== page.dataset.status) location.reload();
  });
})();
