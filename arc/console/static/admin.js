// The supervisors' and administrators' forms: each posts its fields to /api/admin; the page
// reloads when the change is applied and shows the refusal, with its rule, when it is not.
"use strict";
(function () {
  // A field's value as the API takes it: data-type says how; an empty field is left out
  // (the API's default), except where empty means something (data-type="number-or-null").
  function value(field) {
    if (field.type === "checkbox") return field.checked;
    // Passwords and keys exactly as typed; everything else without stray spaces.
    const text = field.type === "password" ? field.value : field.value.trim();
    const type = field.dataset.type;
    if (type === "lines") return text.split("\n").map((s) => s.trim()).filter(Boolean);
    if (type === "keyholders") {
      return text.split("\n").map((s) => s.trim()).filter(Boolean).map((line) => {
        const [name, phone, relation] = line.split(/[,，]/).map((s) => s.trim());
        return { name: name || "", phone: phone || "", relation: relation || "" };
      });
    }
    if (type === "number-or-null") return text === "" ? null : Number(text);
    if (text === "") return undefined;
    if (type === "number") return Number(text);
    return text;
  }

  function body(form) {
    const data = {};
    for (const field of form.elements) {
      if (!field.name || field.disabled) continue;
      const v = value(field);
      if (v !== undefined) data[field.name] = v;
    }
    return data;
  }

  document.querySelectorAll("form[data-post]").forEach((form) => form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    const result = await window.arc.post(form.dataset.post, body(form));
    // A secret is sent once: it does not stay in the page, applied or not.
    form.querySelectorAll('input[type="password"]').forEach((f) => { f.value = ""; });
    if (button) button.disabled = false;
    window.arc.refusal(result);
    if (result.ok) {
      location.reload();
    } else {
      document.getElementById("refusal").scrollIntoView({ block: "nearest" });
    }
  }));
})();
