"""How the browser tests (tests/e2e) find Chromium: the system's first, never a silent skip."""

import re
from pathlib import Path

import pytest

from tests.e2e.browser import find_chromium


def test_with_no_browser_anywhere_the_message_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.delenv("E2E_CHROMIUM", raising=False)
    with pytest.raises(LookupError) as error:
        find_chromium(str(tmp_path / "ms-playwright" / "chrome"), system_candidates=[])
    message = str(error.value)
    assert "apt-get install chromium" in message
    assert "playwright install chromium" in message
    assert str(tmp_path / "ms-playwright") in message


def test_the_system_chromium_is_preferred_to_playwrights_own(tmp_path, monkeypatch):
    monkeypatch.delenv("E2E_CHROMIUM", raising=False)
    system = tmp_path / "chromium"
    system.write_text("#!/bin/sh\n")
    system.chmod(0o755)
    own = tmp_path / "playwright-chrome"
    own.write_text("")
    assert find_chromium(str(own), system_candidates=[str(system)]) == str(system)
    # With no system browser, None means: launch Playwright's own build.
    assert find_chromium(str(own), system_candidates=[str(tmp_path / "absent")]) is None


def test_an_e2e_chromium_that_is_not_executable_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("E2E_CHROMIUM", str(tmp_path / "nothing-here"))
    with pytest.raises(LookupError, match="is not an executable file"):
        find_chromium(None, system_candidates=["/usr/bin/chromium"])


def test_every_browser_test_uses_the_shared_harness_and_none_can_skip():
    """A browser test outside tests/e2e would find Chromium its own way, and might skip without one."""
    tests = Path(__file__).resolve().parents[1]
    e2e = tests / "e2e"
    outside = [
        str(path.relative_to(tests))
        for path in tests.rglob("*.py")
        if not path.is_relative_to(e2e)
        and path.name != Path(__file__).name
        and re.search(r"^\s*(from|import) (playwright|axe_playwright)", path.read_text(), re.M)
    ]
    assert outside == [], f"browser tests outside tests/e2e: {outside}"
    skipping = [
        str(path.relative_to(tests))
        for path in e2e.rglob("*.py")
        if re.search(r"pytest\.(skip|importorskip)\b|mark\.skip", path.read_text())
    ]
    assert skipping == [], f"browser tests that can skip: {skipping}"
