"""The browser tests fail, never skip, when there is no Chromium, and say how to get one.

It asks for the live server and the browser name like the journeys do, so pytest (which groups
tests by the session-wide browser parameter) and pytest-django (which runs live-server tests
last) run it among them while this package's Playwright is up, not after the rest of the suite.
"""

import pytest

from .conftest import _chromium


def test_a_chromium_is_available_for_the_browser_tests(playwright, browser_name, live_server):
    _executable, missing = _chromium(playwright)
    if missing:
        pytest.fail(missing, pytrace=False)
