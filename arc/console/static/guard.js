// The guard's page: one button per step of the visit; the page reloads when the step is recorded.
"use strict";
(function () {
  document.querySelectorAll("article.assignment").forEach((card) => {
    const id = card.dataset.incidentId;
    card.querySelectorAll("button[data-action]").forEach((b) => b.addEventListener("click", async () => {
      const result = await window.arc.post("/api/guard/incidents/" + id + "/" + b.dataset.action, {});
      window.arc.refusal(result);
      if (result.ok) location.reload();
    }));
    const report = card.querySelector("form.report");
    if (report) report.addEventListener("submit", async (e) => {
      e.preventDefault();
      const result = await window.arc.post("/api/guard/incidents/" + id + "/report", new FormData(report));
      window.arc.refusal(result);
      if (result.ok) location.reload();
    });
  });
})();
