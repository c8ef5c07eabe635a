// The portal's small progressive enhancements. Everything works without JavaScript too.
(function () {
  "use strict";

  // The header's theme toggle (dark mode, issue 15): flips between light and dark and remembers
  // the choice in a cookie, which the server renders into <html data-theme> on every page (so no
  // page flashes the other theme). Without a choice the stylesheet follows prefers-color-scheme.
  var THEME_COOKIE = "portal_theme";
  var systemDark = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function currentTheme() {
    var chosen = document.documentElement.getAttribute("data-theme");
    if (chosen === "light" || chosen === "dark") return chosen;
    return systemDark && systemDark.matches ? "dark" : "light";
  }

  function showTheme() {
    var dark = currentTheme() === "dark";
    document.querySelectorAll("[data-theme-toggle]").forEach(function (button) {
      button.hidden = false;
      button.setAttribute("aria-pressed", String(dark));
    });
  }

  document.addEventListener("click", function (event) {
    if (!event.target.closest("[data-theme-toggle]")) return;
    var next = currentTheme() === "dark" ? "light" : "dark";
    document.documentElement.setAttribute("data-theme", next);
    document.cookie = THEME_COOKIE + "=" + next + "; path=/; max-age=31536000; SameSite=Lax" +
      (location.protocol === "https:" ? "; Secure" : "");
    showTheme();
  });
  if (systemDark && systemDark.addEventListener) systemDark.addEventListener("change", showTheme);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", showTheme);
  else showTheme();

  // Buttons with data-copy-target copy that element's text to the clipboard.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) return;
    var target = document.getElementById(button.getAttribute("data-copy-target"));
    if (!target || !navigator.clipboard) return;
    navigator.clipboard.writeText(target.textContent.trim()).then(function () {
      var original = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = original; }, 1500);
    });
  });

  // A "Copy all" button (data-copy-all="Label=element-id;…") copies those elements' text as
  // "Label: value" lines, ready to paste into a phone's or PBX's notes; missing ones are skipped.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy-all]");
    if (!button || !navigator.clipboard) return;
    var lines = [];
    button.getAttribute("data-copy-all").split(";").forEach(function (pair) {
      var parts = pair.split("=");
      var el = document.getElementById(parts[1]);
      if (el) lines.push(parts[0] + ": " + el.textContent.trim());
    });
    navigator.clipboard.writeText(lines.join("\n") + "\n").then(function () {
      var original = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = original; }, 1500);
    });
  });
  function showCopyAll(root) {
    if (!navigator.clipboard) return;
    (root || document).querySelectorAll("[data-copy-all]").forEach(function (b) { b.hidden = false; });
  }
  document.addEventListener("DOMContentLoaded", function () { showCopyAll(document); });
  document.addEventListener("htmx:load", function (event) { showCopyAll(event.target); });

  // Controls kept for use without JavaScript (e.g. a submit beside an htmx select) step aside.
  function hideNoJsOnly(root) {
    (root || document).querySelectorAll("[data-no-js-only]").forEach(function (el) { el.hidden = true; });
  }
  document.addEventListener("DOMContentLoaded", function () { hideNoJsOnly(document); });
  document.addEventListener("htmx:load", function (event) { hideNoJsOnly(event.target); });

  // A plain (non-htmx) form marked data-disable-on-submit disables its submit buttons once sent,
  // against a double submit; htmx forms use hx-disabled-elt instead.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches("[data-disable-on-submit]")) return;
    form.querySelectorAll("button[type=submit]").forEach(function (b) {
      // Defer so the clicked button's name/value still travels with the POST.
      setTimeout(function () { b.disabled = true; b.setAttribute("aria-busy", "true"); }, 0);
    });
  });

  // Clicking a day in the audit chart filters the log to that day: through the filter form, so
  // its fields show the dates (without JavaScript the day's link does the same as a page).
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a.chart-day[data-day]");
    if (!link) return;
    var form = document.querySelector("form.audit-filters");
    var from = form && form.querySelector("[name=date_from]");
    var to = form && form.querySelector("[name=date_to]");
    if (!from || !to || !form.requestSubmit) return;
    event.preventDefault();
    from.value = to.value = link.getAttribute("data-day");
    form.requestSubmit();
  });

  // htmx GET forms marked data-drop-empty leave empty fields out of the request, so the URL
  // pushed into the history holds only the filters in use (shorter to share and bookmark).
  document.addEventListener("htmx:configRequest", function (event) {
    var elt = event.detail.elt;
    var form = elt && elt.closest && elt.closest("form[data-drop-empty]");
    var data = event.detail.formData;
    if (!form || !data || event.detail.verb !== "get") return;
    var keys = [];
    data.forEach(function (value, key) { if (keys.indexOf(key) < 0) keys.push(key); });
    keys.forEach(function (key) {
      if (data.getAll(key).every(function (v) { return v === ""; })) data.delete(key);
    });
  });
})();
