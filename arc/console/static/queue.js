// The live queue: the open incidents from the API, then every change from the stream.
"use strict";
(function () {
  const rows = new Map();
  const body = document.getElementById("queue-rows");
  const empty = document.getElementById("queue-empty");
  const live = document.getElementById("live-state");
  const oldest = document.getElementById("oldest");
  const sound = document.getElementById("sound");
  const w = window.arc.words;
  let audio = null;

  function beep() {
    // Browsers allow sound only after the person turned it on (a click).
    if (!sound.checked) return;
    audio = audio || new AudioContext();
    const o = audio.createOscillator();
    const g = audio.createGain();
    o.frequency.value = 880;
    g.gain.value = 0.2;
    o.connect(g).connect(audio.destination);
    o.start();
    o.stop(audio.currentTime + 0.4);
  }

  function visible(i) {
    return i.status !== "closed" && !(i.held_until && new Date(i.held_until) > new Date());
  }

  const elements = new Map(); // incident id → its row, kept so the page does not flicker

  function render() {
    const list = [...rows.values()].filter(visible);
    list.sort((a, b) => a.grade - b.grade || a.opened_at.localeCompare(b.opened_at));
    const now = Date.now();
    const wanted = list.map((i) => {
      let tr = elements.get(i.incident_id);
      if (!tr) { tr = document.createElement("tr"); elements.set(i.incident_id, tr); }
      fill(tr, i, now);
      return tr;
    });
    for (const [id, tr] of elements) {
      if (!wanted.includes(tr)) { tr.remove(); elements.delete(id); }
    }
    // Move only what is out of place: a row being clicked stays where it is.
    wanted.forEach((tr, n) => { if (body.children[n] !== tr) body.insertBefore(tr, body.children[n] || null); });
    empty.hidden = list.length > 0;
    const waiting = list.filter((i) => i.status === "new").map((i) => i.opened_at).sort();
    oldest.textContent = waiting.length ? window.arc.ago(waiting[0], now) : "–";
    const urgent = list.filter((i) => i.status === "new" && i.grade <= 2).length;
    document.title = (urgent ? "(" + urgent + ") " : "") + w.words["queue.title"];
  }

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function fill(tr, i, now) {
    tr.className = "grade-" + i.grade + " status-" + i.status + (i.status === "new" && i.grade <= 2 ? " alert" : "");
    tr.dataset.incidentId = i.incident_id;
    tr.dataset.status = i.status;
    const texts = [
      i.grade, w.classes[i.event_class] || i.event_class, i.account, null,
      (i.zones || []).join(", "), i.signal_count, w.status[i.status] || i.status, i.owner || "",
      window.arc.beijing(i.opened_at), window.arc.ago(i.opened_at, now),
    ];
    if (tr.children.length !== texts.length) {
      tr.replaceChildren(...texts.map(() => cell("")));
      const link = document.createElement("a");
      tr.children[3].append(link);
    }
    texts.forEach((text, n) => { if (text !== null && tr.children[n].textContent !== String(text)) tr.children[n].textContent = text; });
    const link = tr.children[3].firstChild;
    link.href = "/incidents/" + i.incident_id;
    if (link.textContent !== i.title) link.textContent = i.title;
  }

  function accept(i) {
    const before = rows.get(i.incident_id);
    rows.set(i.incident_id, i);
    if (!before && i.status === "new" && i.grade <= 2) beep();
  }

  async function load() {
    const response = await fetch("/api/queue", { credentials: "same-origin" });
    if (response.status === 401) { location.href = "/login?next=/queue"; return; }
    const data = await response.json();
    rows.clear();
    data.incidents.forEach((i) => rows.set(i.incident_id, i));
    render();
  }

  function connect() {
    const stream = new EventSource("/api/queue/stream");
    stream.addEventListener("hello", () => { live.dataset.state = "live"; live.textContent = w.words["queue.live"]; load(); });
    stream.addEventListener("incident", (e) => { accept(JSON.parse(e.data)); render(); });
    stream.addEventListener("reload", () => { stream.close(); connect(); });
    stream.addEventListener("logout", () => { stream.close(); location.href = "/login"; });
    stream.onerror = () => { live.dataset.state = "offline"; live.textContent = w.words["queue.offline"]; };
  }

  async function loadPanel() {
    const panel = document.getElementById("load-rows");
    if (!panel) return;
    const response = await fetch("/api/queue/load", { credentials: "same-origin" });
    if (!response.ok) return;
    const data = await response.json();
    panel.replaceChildren(...data.load.map((r) => {
      const tr = document.createElement("tr");
      tr.append(cell(r.actor), cell(r.taken), cell(r.closed));
      return tr;
    }));
    const floods = document.getElementById("flood-rows");
    floods.replaceChildren(...data.classes.map((c) => {
      const tr = document.createElement("tr");
      tr.className = c.flood ? "flood" : "";
      tr.append(cell(w.classes[c.event_class] || c.event_class), cell(c.incidents),
        cell(c.flood ? w.words["queue.flood"] : ""));
      return tr;
    }));
  }

  connect();
  loadPanel();
  setInterval(render, 5000); // the waiting times move on
  setInterval(loadPanel, 30000);
})();
