"""What every browser journey needs: find Chromium, watch each page for CSP violations and script
errors, scan it with axe-core, and (on failure, or with E2E_SCREENSHOTS=1) keep a screenshot of it.

Kept apart from conftest.py so the journeys can import the `Portal` type and the helpers by name.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import axe_playwright_python
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Request, Response

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
# axe-core's moderate and minor findings, for a person to review (they do not fail a journey).
AXE_REPORT = ROOT / "artifacts" / "axe-minor.txt"

# This machine's network is closed: Chromium must not try to phone home (each attempt would
# wait for a timeout, and some show up as console errors).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

NO_BROWSER_MESSAGE = """\
No Chromium found for the browser tests (tests/e2e).
They run as part of `make test` and need a Chromium:
  - Debian/Ubuntu: `apt-get install chromium` (what CI installs; found at /usr/bin/chromium), or
  - Playwright's own build: `.venv/bin/playwright install chromium`, or
  - point E2E_CHROMIUM at a Chromium executable.
Looked for: {looked}"""

# axe-core impacts that fail a journey. "moderate" and "minor" are reported, not fatal.
FATAL_IMPACTS = {"serious", "critical"}

# axe-core (570 kB, the copy axe-playwright-python ships), served to the browser as a static file
# by the live server while the journeys run (conftest.py's `axe_served`), under this prefix.
AXE_SCRIPT = Path(axe_playwright_python.__file__).resolve().parent / "axe.min.js"
AXE_STATIC_PREFIX = "e2e-axe"


def find_chromium(
    playwright_executable: str | None, system_candidates: list[str] | None = None
) -> str | None:
    """The Chromium to drive: E2E_CHROMIUM, then the system's, then Playwright's own download.

    Returns an executable path, or None to launch Playwright's own build. Raises LookupError with
    a message saying how to get a browser when there is none: the tests fail, never skip.
    """
    looked = []
    explicit = os.environ.get("E2E_CHROMIUM", "").strip()
    if explicit:
        if Path(explicit).is_file() and os.access(explicit, os.X_OK):
            return explicit
        raise LookupError(
            f"E2E_CHROMIUM={explicit!r} is not an executable file.\n"
            + NO_BROWSER_MESSAGE.format(looked=explicit)
        )
    if system_candidates is None:
        system_candidates = ["/usr/bin/chromium"]
        system_candidates += filter(None, map(shutil.which, ("chromium", "chromium-browser")))
    candidates = system_candidates
    for candidate in candidates:
        looked.append(candidate)
        if Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    if playwright_executable:
        looked.append(playwright_executable)
        if Path(playwright_executable).is_file():
            return None
    raise LookupError(NO_BROWSER_MESSAGE.format(looked=", ".join(looked) or "nothing"))


# Runs in every page before its own scripts. The binding is Playwright's (CDP), so CSP cannot
# block it; the listener reports each violation to Python as it happens, across navigations and
# after every htmx swap (a swap's violations fire on its new elements and bubble to document).
#
# The probe: in a person's browser, autofill, password managers and other extensions give the
# page's inputs inline styles through the CSSOM (allowed by CSP). A script that later copies such
# a `style` attribute with setAttribute breaks `style-src` — htmx's settle step did that to every
# field with an id when the trunk form came back with errors. The tests' pages have no extension,
# so before each swap the probe gives every element of the target that has an id a harmless CSSOM
# style (a custom property): any code that re-applies style attributes is caught on every page.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__e2eCspViolation({
    directive: e.effectiveDirective || e.violatedDirective,
    blocked: e.blockedURI,
    source: (e.sourceFile || "") + ":" + (e.lineNumber || 0),
    sample: e.sample || "",
    page: document.location.href,
    element: e.target && e.target.id ? "#" + e.target.id : "",
  });
});
document.addEventListener("htmx:beforeSwap", (e) => {
  const target = e.detail && e.detail.target;
  if (!target || !target.querySelectorAll) return;
  const probed = [target, ...target.querySelectorAll("[id]")].filter((el) => el.id);
  probed.forEach((el) => el.style.setProperty("--e2e-extension-style", "1"));
});
"""


@dataclass
class PageWatch:
    """Everything a browser context reported that a journey must not produce."""

    csp_violations: list[dict] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    failed_assets: list[str] = field(default_factory=list)
    # Every page and htmx/fetch answer the portal sent: (url, status, body), to search for secrets.
    bodies: list[tuple[str, int, str]] = field(default_factory=list)

    def bodies_containing(self, secret: str) -> list[str]:
        return [f"{status} {url}" for url, status, body in self.bodies if secret in body]

    def problems(self) -> list[str]:
        out = [f"CSP violation: {v}" for v in self.csp_violations]
        out += [f"JavaScript error: {e}" for e in self.page_errors]
        out += [f"Asset failed to load: {a}" for a in self.failed_assets]
        # Chromium logs CSP refusals to the console too (also when the page has no JavaScript to
        # run our listener); every other console error is only reported, not fatal (an htmx
        # request answered 4xx on purpose logs one).
        out += [
            f"CSP (console): {c}" for c in self.console_errors if "Content Security Policy" in c
        ]
        return out

    def clear(self) -> None:
        self.csp_violations.clear()
        self.page_errors.clear()
        self.console_errors.clear()
        self.failed_assets.clear()

    def reset(self) -> None:
        """As new, for the next test that borrows this browser (conftest.BrowserPool)."""
        self.clear()
        self.bodies.clear()


def watch_context(context: BrowserContext) -> PageWatch:
    """Attach the CSP, script-error and asset watchers to every page of `context`."""
    watch = PageWatch()
    context.expose_binding(
        "__e2eCspViolation", lambda _source, violation: watch.csp_violations.append(violation)
    )
    context.add_init_script(CSP_LISTENER)

    def on_page(page: Page) -> None:
        page.on("pageerror", lambda error: watch.page_errors.append(f"{page.url}: {error}"))

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                watch.console_errors.append(f"{page.url}: {message.text}")

        def on_response(response: Response) -> None:
            if response.request.resource_type in {"stylesheet", "script", "image", "font"} and (
                response.status >= 400
            ):
                watch.failed_assets.append(f"{response.status} {response.url}")

        def keep_body(response: Response) -> None:
            if response.request.resource_type in {"document", "xhr", "fetch"} and not (
                300 <= response.status < 400
            ):
                try:
                    watch.bodies.append((response.url, response.status, response.text()))
                except Exception:  # a body the browser dropped already (it navigated away)
                    watch.bodies.append((response.url, response.status, ""))

        def on_request_failed(request: Request) -> None:
            # ERR_ABORTED: the page navigated away before the asset arrived, not a fault.
            if request.resource_type in {"stylesheet", "script", "image", "font"} and (
                "ERR_ABORTED" not in (request.failure or "")
            ):
                watch.failed_assets.append(f"{request.failure} {request.url}")

        page.on("console", on_console)
        page.on("response", on_response)
        page.on("response", keep_body)
        page.on("requestfailed", on_request_failed)

    context.on("page", on_page)
    return watch


# The axe-core rules whose outcome the colour theme can change. The themes differ only in colours
# (static/css/portal.css writes each as light-dark(light, dark) and sets color-scheme) and in the
# header toggle's aria-pressed (static/js/portal.js), so a page scanned in full in one theme needs
# only these in the other: the contrast rules read colours, aria-valid-attr-value the toggle's state.
THEME_RULES = ("color-contrast", "link-in-text-block", "aria-valid-attr-value")


def axe_violations(page: Page, script_url: str, rules: tuple[str, ...] | None = None) -> list[dict]:
    """axe-core's violations on the page as it is now: every rule axe runs by default, or only
    `rules`. axe is loaded once per document, not once per scan, from `script_url` (same origin,
    so the CSP's script-src 'self' allows it): a <script src> the browser fetches itself, not the
    570 kB source sent as JSON from Python through Playwright's driver and the DevTools protocol
    (page.evaluate). Measured on the trunk form, a load and a full scan: Chromium 0.86 → 0.76 CPU-s
    (with the violations-only answer below), 2.5 → 1.4 s wall on the loaded 2-CPU machine."""
    if not page.evaluate("() => typeof window.axe?.run === 'function'"):
        page.add_script_tag(url=script_url)
    options: dict = {"resultTypes": ["violations"]}
    if rules:
        options["runOnly"] = {"type": "rule", "values": list(rules)}
    # Only the violations cross back to Python: axe's whole result (every rule that passed or did
    # not apply, with its description and tags) is some 100 kB of JSON per scan through Chromium.
    return page.evaluate("options => axe.run(document, options).then(r => r.violations)", options)


def format_violations(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        targets = [" ".join(map(str, n.get("target", []))) for n in v.get("nodes", [])][:5]
        lines.append(f"[{v.get('impact')}] {v.get('id')}: {v.get('help')} -> {targets}")
    return "\n".join(lines)


def screenshots_wanted() -> bool:
    """Every checked page's screenshot, for a person reviewing the look: `E2E_SCREENSHOTS=1`.
    Otherwise only a failing test's pages are kept (conftest.py): a full-page PNG costs Chromium
    about a quarter of a second, and no assertion reads it."""
    return os.environ.get("E2E_SCREENSHOTS", "").strip().lower() in {"1", "true", "yes"}


def screenshot(page: Page, name: str, *, always: bool = False) -> Path | None:
    """A full-page PNG at artifacts/screenshots/<name>.png (git-ignored), replaced every run; only
    with E2E_SCREENSHOTS=1 (or `always`, for a failure's evidence), else None."""
    if not (always or screenshots_wanted()):
        return None
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    # caret="initial": hiding the caret leaves an empty style="" on every input, which htmx's settle
    # step then copies with setAttribute, a CSP violation the portal itself never causes.
    page.screenshot(path=str(path), full_page=True, animations="disabled", caret="initial")
    return path


# htmx marks the element whose request is in flight `.htmx-request`, a target being swapped
# `.htmx-swapping` and one settling `.htmx-settling` (htmx:afterSettle fires as the last goes).
HTMX_BUSY = ".htmx-request, .htmx-swapping, .htmx-settling"
# How often (ms) a wait in the page tests its condition again. Not Playwright's default, every
# animation frame: that makes Chromium draw 60 frames a second for as long as the wait lasts (about
# 0.08 CPU-s per second waited here, measured, against 0.02 every 100 ms); an htmx answer from the
# loaded live server can take a second or more. The first test is at once, as before.
POLL_MS = 50


def page_settled(page: Page) -> None:
    """Wait for what a person waits for before typing: the page loaded, no htmx request in flight,
    every swap settled (its new elements in place, their scripts run). Never a fixed time."""
    page.wait_for_load_state()
    page.wait_for_function(
        "busy => document.readyState === 'complete' && !document.querySelector(busy)",
        arg=HTMX_BUSY,
        polling=POLL_MS,
    )


def until(page: Page, condition: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    """Wait until `condition()` holds (a fact in Python: a callback the browser made, a row the
    server wrote), letting Playwright deliver its events meanwhile. Fails saying `what` never came."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout_s:.0f} s for {what}")
        # Not a wait for time: this hands Playwright's event loop a turn, so the browser's
        # callbacks (bindings, responses) reach Python; the condition decides when to go on.
        page.wait_for_timeout(20)
