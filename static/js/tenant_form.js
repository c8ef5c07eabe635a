// The tenant form: suggest the short name from the name until the admin edits the short name.
// Mirrors what the server accepts (lower-case letters, digits, hyphens); the server checks again.
(function () {
  "use strict";

  function slugify(text) {
    return text
      .normalize("NFKD")
      .replace(/[\u0300-\u036f]/g, "")
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, 50)
      .replace(/-+$/g, "");
  }

  function wire(slugInput) {
    var source = document.getElementById(slugInput.dataset.slugFrom);
    if (!source) return;
    // An existing short name (editing a tenant) is the admin's choice: leave it alone.
    var touched = slugInput.value !== "" && slugInput.value !== slugify(source.value);
    slugInput.addEventListener("input", function () {
      touched = slugInput.value !== "";
    });
    source.addEventListener("input", function () {
      if (!touched) slugInput.value = slugify(source.value);
    });
  }

  function init() {
    document.querySelectorAll("input[data-slug-from]").forEach(wire);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
