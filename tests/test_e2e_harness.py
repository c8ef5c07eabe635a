"""How the browser tests (tests/e2e) find Chromium: the system's first, never a silent skip."""

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
