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
