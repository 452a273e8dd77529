// What every page shares: the words of its language, the CSRF token, posting to the API.
"use strict";
(function () {
  const meta = document.querySelector('meta[name="csrf"]');
  const words = JSON.parse(document.getElementById("words").textContent);

  async function post(url, body) {
    const headers = { "X-CSRF-Token": meta ? meta.content : "" };
    let payload = body;
    if (!(body instanceof FormData)) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body || {});
    }
    const response = await fetch(url, { method: "POST", headers, body: payload, credentials: "same-origin" });
    let data = {};
    try { data = await response.json(); } catch (e) { data = {}; }
    return { ok: response.ok, status: response.status, data };
  }

  function refusal(result) {
    const box = document.getElementById("refusal");
    if (!box) return;
    if (result.ok) { box.hidden = true; box.textContent = ""; return; }
    const d = result.data || {};
    box.textContent = (words.words["incident.refused"] || "") + ": " + (d.error || result.status) + (d.rule ? " (" + d.rule + ")" : "");
    box.hidden = false;
  }

  function beijing(iso) {
    if (!iso) return "";
    const t = new Date(iso);
    // Beijing has no daylight saving: UTC+8 all year.
    const b = new Date(t.getTime() + 8 * 3600 * 1000);
    return b.toISOString().slice(0, 19).replace("T", " ");
  }

  function ago(iso, now) {
    const s = Math.max(0, Math.round((now - new Date(iso).getTime()) / 1000));
    if (s < 120) return words.words["time.seconds"].replace("{n}", s);
    return words.words["time.minutes"].replace("{n}", Math.floor(s / 60));
  }

  window.arc = { words, post, refusal, beijing, ago };
})();
