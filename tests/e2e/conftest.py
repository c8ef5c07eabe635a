"""Browser journeys in real headless Chromium against pytest-django's live server.

One browser for the whole package; each person in a test gets a clean context with one page,
lent by `BrowserPool` (signed out, no stored data, default screen) and given back clean. Every
page a journey visits is watched for CSP violations, script errors and missing assets, and
`Portal.check()` scans it with axe-core (and keeps a screenshot of it with E2E_SCREENSHOTS=1; a
failing test keeps a screenshot of each of its pages as it was left).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.templatetags.static import static
from django.test import Client, override_settings
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from .browser import (
    AXE_REPORT,
    AXE_SCRIPT,
    AXE_STATIC_PREFIX,
    CHROMIUM_ARGS,
    FATAL_IMPACTS,
    POLL_MS,
    PageWatch,
    axe_violations,
    find_chromium,
    format_violations,
    page_settled,
    screenshot,
    watch_context,
)

HERE = Path(__file__).resolve().parent

# Playwright's actions wait this long (ms) for an element before failing the test.
ACTION_TIMEOUT_MS = 15_000
expect.set_options(timeout=ACTION_TIMEOUT_MS)


# Under pytest-xdist the journeys are split in two groups, one Chromium per worker:
# tests/scheduling.py.
def pytest_itemcollected(item):
    if Path(str(item.path)).is_relative_to(HERE):
        item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test, so the fixtures can tell a failure at teardown."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


# --- The browser ---------------------------------------------------------------------------------
# pytest-playwright's own fixtures are session-scoped. Its sync API keeps an asyncio loop running
# in the main thread for as long as Playwright is started, and Django refuses ORM calls from a
# thread with a running loop (SynchronousOnlyOperation). So Playwright lives only while this
# package's tests run, and only they get DJANGO_ALLOW_ASYNC_UNSAFE: the rest of the suite keeps
# Django's check.


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    pw = sync_playwright().start()
    try:
        yield pw
    finally:
        pw.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def _chromium(playwright) -> tuple[str | None, str]:
    """(executable or None for Playwright's own build, "") or (None, why there is no browser)."""
    try:
        return find_chromium(playwright.chromium.executable_path), ""
    except LookupError as error:
        return None, str(error)


@pytest.fixture(scope="package")
def browser_type(playwright, browser_name):
    return getattr(playwright, browser_name)


@pytest.fixture(scope="package")
def browser_type_launch_args(pytestconfig, playwright) -> dict:
    executable, missing = _chromium(playwright)
    if missing:
        pytest.fail(missing, pytrace=False)
    args: dict = {"args": CHROMIUM_ARGS, "headless": not pytestconfig.getoption("--headed")}
    if executable:
        args["executable_path"] = executable
    if pytestconfig.getoption("--slowmo"):
        args["slow_mo"] = pytestconfig.getoption("--slowmo")
    return args


@pytest.fixture(scope="package")
def launch_browser(browser_type_launch_args, browser_type) -> Callable:
    def launch(**kwargs):
        return browser_type.launch(**{**browser_type_launch_args, **kwargs})

    return launch


@pytest.fixture(scope="package")
def browser(launch_browser):
    browser = launch_browser()
    yield browser
    browser.close()


@pytest.fixture(scope="package")
def browser_context_args() -> dict:
    # Same viewport and locale for every run, so screenshots are comparable.
    return {
        "viewport": {"width": 1280, "height": 900},
        "locale": "en-AU",
        "timezone_id": settings.TIME_ZONE,
    }


@dataclass
class Tab:
    """One person's browser: a context (cookies, storage) with one page, and what it reported."""

    context: BrowserContext
    page: Page
    watch: PageWatch
    js: bool


class BrowserPool:
    """Lends each person in a test a clean browser, and takes it back clean for the next test.

    A new context costs Chromium a new renderer process (so does a new page, or leaving the
    portal's origin for about:blank): about 1.1 CPU-seconds more than loading a page in one that
    exists, measured. A browser given back is signed out (no cookie), holds no local or session
    storage, has the default screen size and colour scheme and no watcher report, and shows a
    static file of the portal's own origin (so nothing of the last test's page runs on, and the
    renderer stays). A failed test's browser, or one with a second page (a popup), is closed.
    """

    def __init__(self, browser: Browser, context_args: dict):
        self._browser = browser
        self._context_args = context_args
        self._idle: dict[bool, list[Tab]] = {True: [], False: []}

    def lend(self, *, js: bool) -> Tab:
        if self._idle[js]:
            return self._idle[js].pop()
        context = self._browser.new_context(**self._context_args, java_script_enabled=js)
        watch = watch_context(context)
        return Tab(context=context, page=context.new_page(), watch=watch, js=js)

    def give_back(self, tab: Tab, *, clean_url: str, failed: bool) -> None:
        try:
            if not failed and not tab.page.is_closed() and tab.context.pages == [tab.page]:
                # Navigated away, not blanked in place (document.open() on the last page, which
                # keeps its window, URL and history): with pages blanked in place, a full run saw
                # the audit log's Back restore a filtered list (3 rows for 5), which no run of the
                # test alone shows. Until that is understood, the ~75 ms of Chromium CPU a
                # navigation costs buys a page nothing of the last test can reach.
                tab.page.goto(clean_url)
                tab.page.evaluate("() => { localStorage.clear(); sessionStorage.clear(); }")
                tab.context.clear_cookies()
                tab.page.set_viewport_size(self._context_args["viewport"])
                tab.page.emulate_media(media="null", color_scheme="light")
                tab.watch.reset()
                self._idle[tab.js].append(tab)
                return
        except PlaywrightError:
            pass  # not reusable: closed below
        with contextlib.suppress(PlaywrightError):
            tab.context.close()

    def close(self) -> None:
        for tabs in self._idle.values():
            for tab in tabs:
                tab.context.close()
            tabs.clear()


@pytest.fixture(scope="package")
def browser_pool(browser, browser_context_args) -> Iterator[BrowserPool]:
    pool = BrowserPool(browser, browser_context_args)
    yield pool
    pool.close()


@pytest.fixture(scope="package")
def axe_served(tmp_path_factory) -> Iterator[str]:
    """axe-core as a static file of the live server while the journeys run (its path, under
    STATIC_URL): a folder holding only axe.min.js, added to STATICFILES_DIRS under its prefix
    (the live server's static handler finds files through the finders, which Django rebuilds
    when STATICFILES_DIRS changes). Nothing outside the tests serves it."""
    folder = tmp_path_factory.mktemp("axe")
    shutil.copy2(AXE_SCRIPT, folder / AXE_SCRIPT.name)  # its time too: the browser may cache it
    dirs = [*settings.STATICFILES_DIRS, (AXE_STATIC_PREFIX, str(folder))]
    with override_settings(STATICFILES_DIRS=dirs):
        yield static(f"{AXE_STATIC_PREFIX}/{AXE_SCRIPT.name}")


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Cached verified numbers and the rate limiter's state must not leak from one test to the next."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The journeys log people in many times; the real hasher's cost is not what they test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- The portal, as one person sees it -------------------------------------------------------------


FINISH_ANIMATIONS = """() => {
  const running = document.getAnimations().filter((a) => a.playState === "running");
  const finite = running.filter((a) => a.effect?.getComputedTiming().endTime !== Infinity);
  finite.forEach((a) => a.finish());
  return finite.length === running.length;
}"""


class Portal:
    """One person's browser (a context with one page) on the live portal."""

    def __init__(self, *, tab: Tab, base_url: str, axe_path: str):
        self.tab = tab
        self.context = tab.context
        self.watch = tab.watch
        self.base_url = base_url
        self.axe_url = base_url + axe_path
        self.js = tab.js
        self.page: Page = tab.page
        self.page.set_default_timeout(ACTION_TIMEOUT_MS)
        self.checked: list[str] = []

    def url(self, path: str) -> str:
        return self.base_url + path

    def goto(self, path: str):
        """Open `path` and wait until it has settled (its htmx fragments loaded), as a person does."""
        response = self.page.goto(self.url(path))
        self.settled()
        return response

    def settled(self) -> None:
        """No htmx request in flight, every swap settled (see browser.page_settled)."""
        if self.js:
            page_settled(self.page)
        else:
            self.page.wait_for_load_state()

    def login(self, username: str, password: str) -> None:
        """Log in through the login page, as a person does."""
        self.goto("/accounts/login/")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Log in").click()
        self.settled()
        expect(self.page.get_by_role("button", name="Log out")).to_be_visible()

    def login_as(self, user) -> None:
        """A session for `user` without the login page (for journeys that do not test login)."""
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        self.context.add_cookies(
            [{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": self.base_url}]
        )

    def assert_clean(self) -> None:
        """No CSP violation, script error or missing asset so far in this browser."""
        problems = self.watch.problems()
        if problems:
            self.watch.clear()  # reported once, here, not again when the test ends
            raise AssertionError("The browser reported:\n" + "\n".join(problems))

    def check(self, name: str | None = None, *, rules: tuple[str, ...] | None = None) -> None:
        """The page as it is now: clean, no serious or critical axe violation (of every rule, or
        only `rules`), screenshot kept."""
        self.settled()
        self.assert_clean()
        if self.js:
            # Transitions at their end (an htmx indicator fading out is half-transparent for 200 ms):
            # a finite one is finished at once, to the state it ends in; an endless one is waited
            # for (and fails the check when the timeout comes: axe cannot read a moving page).
            if not self.page.evaluate(FINISH_ANIMATIONS):
                self.page.wait_for_function(
                    "() => document.getAnimations().every(a => a.playState !== 'running')",
                    polling=POLL_MS,
                )
            violations = axe_violations(self.page, self.axe_url, rules)
            fatal = [v for v in violations if v.get("impact") in FATAL_IMPACTS]
            assert not fatal, f"axe on {self.page.url} ({name}):\n" + format_violations(fatal)
            if violations:
                with AXE_REPORT.open("a") as report:
                    report.write(
                        f"\n{name or ''} {self.page.url}\n{format_violations(violations)}\n"
                    )
            # axe is loaded into the page and runs there: make sure it did not trip the CSP itself.
            self.assert_clean()
        if name:
            screenshot(self.page, name)
        self.checked.append(name or self.page.url)


def _failure_screenshots(item, portals: list[Portal]) -> None:
    """A failed test's evidence: each person's page as the test left it."""
    report = getattr(item, "report_call", None)
    if report is None or not report.failed:
        return
    name = item.name.replace("/", "_").replace("[", "-").replace("]", "")
    for index, portal in enumerate(portals):
        try:
            screenshot(portal.page, f"FAILED-{name}-{index}", always=True)
        except Exception as error:  # a closed page or browser: the failure itself matters more
            print(f"no screenshot of {portal.page.url}: {error}")


@pytest.fixture
def open_portal(request, browser_pool, live_server, axe_served) -> Iterator[Callable[..., Portal]]:
    """Opens a browser for one more person: `open_portal()`, `open_portal(js=False)`."""
    portals: list[Portal] = []

    def _open(*, js: bool = True) -> Portal:
        portal = Portal(tab=browser_pool.lend(js=js), base_url=live_server.url, axe_path=axe_served)
        portals.append(portal)
        return portal

    yield _open
    _failure_screenshots(request.node, portals)
    # Pages visited between two check() calls are held to the same rule.
    problems = [p for portal in portals for p in portal.watch.problems()]
    failed = any(
        getattr(getattr(request.node, f"report_{when}", None), "failed", False)
        for when in ("setup", "call")
    )
    clean_url = live_server.url + static("css/portal.css")
    for portal in portals:
        browser_pool.give_back(portal.tab, clean_url=clean_url, failed=failed or bool(problems))
    assert not problems, "The browser reported:\n" + "\n".join(problems)


@pytest.fixture
def portal(open_portal) -> Portal:
    return open_portal()


# --- Tenants wired to the built-in Crazytel sandbox ------------------------------------------------

# Crazytel lists numbers in international form without "+"; people see them in national format.
NUMBERS_ALPHA = [
    {"number": "61298765432", "label": "Sydney office"},
    {"number": "61387654321", "label": ""},
    {"number": "61412345678", "label": "Ops mobile"},
    {"number": "61487654321", "label": ""},
]
NUMBERS_BRAVO = [
    {"number": "61755501234", "label": "Brisbane desk"},
    {"number": "61400111222", "label": "Bravo mobile"},
]


def _sandbox_account(name: str, numbers: list[dict]):
    from trunks.sandbox.services import sandbox_account_ensure

    account = sandbox_account_ensure(name=name)
    account.verified_numbers = numbers
    account.save()
    return account


@pytest.fixture
def sandbox_alpha(transactional_db):
    return _sandbox_account("Alpha Telecom's Crazytel", NUMBERS_ALPHA)


@pytest.fixture
def sandbox_bravo(transactional_db):
    return _sandbox_account("Bravo Networks' Crazytel", NUMBERS_BRAVO)


@pytest.fixture
def alpha(tenant_a, sandbox_alpha, live_server):
    """Tenant A, its key set, talking to its own sandbox account."""
    from .journeys import sandbox_url, tenant_connect

    return tenant_connect(
        tenant_a, base_url=sandbox_url(live_server), api_key=sandbox_alpha.api_key
    )


@pytest.fixture
def bravo_alone(tenant_b, sandbox_bravo, live_server):
    """Tenant B, its key set, on its own sandbox account."""
    from .journeys import sandbox_url, tenant_connect

    return tenant_connect(
        tenant_b, base_url=sandbox_url(live_server), api_key=sandbox_bravo.api_key
    )


@pytest.fixture
def bravo(bravo_alone, alice):
    """Tenant B, where alice is staff too (so she picks a tenant)."""
    from tests.factories import MembershipFactory

    MembershipFactory(user=alice, tenant=bravo_alone)  # staff
    return bravo_alone
