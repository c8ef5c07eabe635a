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
    // An empty field meets no rule, not even "no characters the portal refuses".
    if (value === "") return false;
    var found = rule.re.test(value);
    return rule.forbids ? !found : found;
  }

  // Once the password meets every rule, the server's earlier complaint about it no longer holds:
  // take it away (typed or generated), so the field does not contradict its own checklist.
  function clearServerErrors(input, allMet) {
    if (!allMet) return;
    var field = input.closest(".field");
    if (!field) return;
    field.querySelectorAll(".errorlist").forEach(function (list) { list.remove(); });
    field.classList.remove("has-error");
    input.removeAttribute("aria-invalid");
    var described = (input.getAttribute("aria-describedby") || "").split(/\s+/).filter(function (id) {
      return id && document.getElementById(id);
    });
    if (described.length) input.setAttribute("aria-describedby", described.join(" "));
  }

  // Tick each rule of the checklist the same way the server checks it (one definition: passwords.py).
  function updateChecklist(input) {
    var list = document.querySelector('[data-password-input="' + input.id + '"]');
    if (!list) return;
    var all = rules();
    clearServerErrors(input, all.length > 0 && all.every(function (rule) { return passes(rule, input.value); }));
    all.forEach(function (rule) {
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

  // "Sync SMS" needs an SMS sender: without one the box cannot be ticked (the server refuses it too).
  function syncSmsState() {
    var sender = document.querySelector("#trunk-form [name=sms_sender]");
    var sync = document.querySelector("#trunk-form [name=softphone_sync_sms]");
    if (!sender || !sync) return;
    var none = !sender.value;
    if (none) sync.checked = false;
    sync.disabled = none;
    var help = document.getElementById("sync-sms-needs-sender");
    if (!help) {
      help = document.createElement("p");
      help.id = "sync-sms-needs-sender";
      help.className = "help";
      help.textContent = "Choose an SMS sender first: SMS can only be synced from one.";
      var field = sync.closest(".field") || sync.parentNode;
      field.appendChild(help);
    }
    help.hidden = !none;
  }

  // After Crazytel's (or the portal's) "too many requests", the button waits out the pause,
  // counting down, and comes back when it ends.
  var countdownTimer = null;
  function startCountdown(root) {
    var outcome = (root || document).querySelector("[data-retry-after]");
    if (!outcome && root && root.matches && root.matches("[data-retry-after]")) outcome = root;
    if (!outcome) return;
    var line = outcome.querySelector("[data-retry-countdown]");
    var seconds = parseInt(outcome.getAttribute("data-retry-after"), 10);
    if (!(seconds > 0)) return;
    var ends = Date.now() + seconds * 1000;
    if (countdownTimer) clearInterval(countdownTimer);
    function tick() {
      var button = document.querySelector("#trunk-submit button[type=submit]");
      var left = Math.max(0, Math.ceil((ends - Date.now()) / 1000));
      if (button) {
        if (button.getAttribute("data-waiting") === null && !button.disabled) button.setAttribute("data-waiting", "");
        if (button.getAttribute("data-waiting") !== null) {
          button.disabled = left > 0;
          button.setAttribute("aria-disabled", String(left > 0));
        }
      }
      if (line) {
        line.hidden = false;
        line.textContent = left > 0
          ? "You can try again in " + left + " second" + (left === 1 ? "" : "s") + "."
          : "You can try again now.";
      }
      if (left <= 0) {
        clearInterval(countdownTimer);
        countdownTimer = null;
        if (button && button.getAttribute("data-waiting") !== null) {
          button.removeAttribute("data-waiting");
          button.removeAttribute("aria-disabled");
        }
      }
    }
    tick();
    countdownTimer = setInterval(tick, 250);
  }

  document.addEventListener("change", function (event) {
    if (event.target && event.target.name === "sms_sender") syncSmsState();
  });

  function enhance(root) {
    syncSmsState();
    startCountdown(root);
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
