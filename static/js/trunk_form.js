// The trunk form's helpers: the password checklist, show/hide, Generate. The form works without them.
(function () {
  "use strict";

  function rules() {
    var el = document.getElementById("password-rules");
    if (!el) return [];
    try {
      return JSON.parse(el.textContent).map(function (r) {
        return { id: r.id, label: r.label, forbids: !!r.forbids, re: new RegExp(r.pattern) };
      });
    } catch (e) { return []; }
  }

  function passes(rule, value) {
    var found = rule.re.test(value);
    return rule.forbids ? !found : found;
  }

  // Tick each rule of the checklist the same way the server checks it (one definition: passwords.py).
  function updateChecklist(input) {
    var list = document.querySelector('[data-password-input="' + input.id + '"]');
    if (!list) return;
    rules().forEach(function (rule) {
      var item = list.querySelector('[data-rule="' + rule.id + '"]');
      if (!item) return;
      var met = passes(rule, input.value);
      if (item.getAttribute("data-met") === String(met)) return;  // announce changes only
      item.setAttribute("data-met", String(met));
      var state = item.querySelector(".rule-state");
      if (state) state.textContent = met ? " — met" : " — not met yet";
    });
  }

  function setVisible(input, button, visible) {
    input.type = visible ? "text" : "password";
    button.textContent = visible ? "Hide" : "Show";
    button.setAttribute("aria-pressed", String(visible));
    button.setAttribute("aria-label", visible ? "Hide password" : "Show password");
  }

  function enhance(root) {
    (root || document).querySelectorAll("[data-password-toggle],[data-password-generate]").forEach(function (b) {
      b.hidden = false;
    });
    (root || document).querySelectorAll("[data-password-input]").forEach(function (list) {
      var input = document.getElementById(list.getAttribute("data-password-input"));
      if (input) updateChecklist(input);
    });
  }

  document.addEventListener("input", function (event) {
    var input = event.target;
    if (input && input.id && document.querySelector('[data-password-input="' + input.id + '"]')) {
      updateChecklist(input);
    }
  });

  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("[data-password-toggle]");
    if (toggle) {
      var input = document.getElementById(toggle.getAttribute("data-password-toggle"));
      if (input) setVisible(input, toggle, input.type === "password");
      return;
    }
    var generate = event.target.closest("[data-password-generate]");
    if (!generate) return;
    var target = document.getElementById(generate.getAttribute("data-password-generate"));
    if (!target) return;
    generate.disabled = true;
    // The server generates it (Python's `secrets`, the same rules); the response is never cached.
    fetch(generate.getAttribute("data-url"), {
      headers: { "Accept": "application/json" },
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function (body) {
      target.value = body.password;
      var toggleButton = document.querySelector('[data-password-toggle="' + target.id + '"]');
      if (toggleButton) setVisible(target, toggleButton, true);
      updateChecklist(target);
      var note = document.getElementById("password-generated-note");
      if (note) note.hidden = false;
      target.focus();
    }).catch(function () {
      var note = document.getElementById("password-generated-note");
      if (note) { note.textContent = "A password could not be generated just now; type one instead."; note.hidden = false; }
    }).finally(function () { generate.disabled = false; });
  });

  document.addEventListener("DOMContentLoaded", function () { enhance(document); });
  document.addEventListener("htmx:load", function (event) { enhance(event.target); });
})();
