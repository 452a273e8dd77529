// The guard's page: one button per step of the visit; the page reloads when the step is recorded.
"use strict";
(function () {
  // The guard's position, for the proposal (nearest guard first): once a minute at most.
  let sent = 0;
  if (navigator.geolocation && document.body.classList.contains("phone")) {
    navigator.geolocation.watchPosition((p) => {
      if (Date.now() - sent < 60000) return;
      sent = Date.now();
      window.arc.post("/api/guard/position", { latitude: p.coords.latitude, longitude: p.coords.longitude });
    }, () => {}, { enableHighAccuracy: true, maximumAge: 30000 });
  }

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
