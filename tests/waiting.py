"""Waiting on another process or thread: poll the real condition until a deadline, never a fixed time."""

import time
from collections.abc import Callable


def wait_until[T](condition: Callable[[], T], what: str, timeout_s: float = 30.0) -> T:
    """Return `condition()`'s first truthy value; fail naming `what` once `timeout_s` has passed.

    The short pause between polls only spares the CPU: the condition, not a time, decides when to go
    on. For a browser page use tests/e2e/browser.py's `until`, which lets Playwright run meanwhile.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout_s:.0f} s for {what}")
        time.sleep(0.02)
