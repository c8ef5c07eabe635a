"""The portal's system checks: the credentials encryption keys are present, valid and not SECRET_KEY."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core import checks

from portal.checks import credentials_keys_check, trusted_proxy_check

ROOT = Path(__file__).resolve().parents[2]
GOOD = Fernet.generate_key().decode()


def ids(messages):
    return [m.id for m in messages]


def test_a_valid_separate_key_passes(settings):
    settings.CREDENTIALS_ENCRYPTION_KEYS = [GOOD, Fernet.generate_key().decode()]
    assert credentials_keys_check() == []


def test_a_key_equal_to_the_secret_key_is_an_error(settings):
    settings.SECRET_KEY = GOOD
    settings.CREDENTIALS_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), GOOD]
    problems = credentials_keys_check()
    assert ids(problems) == ["portal.E001"]
    assert problems[0].level == checks.ERROR
    assert "entry 2" in problems[0].msg
    assert GOOD not in problems[0].msg  # the message never shows a key


def test_a_key_equal_to_a_fallback_secret_key_is_an_error(settings):
    settings.SECRET_KEY_FALLBACKS = [GOOD]
    settings.CREDENTIALS_ENCRYPTION_KEYS = [GOOD]
    assert ids(credentials_keys_check()) == ["portal.E001"]


@pytest.mark.parametrize(
    "bad",
    ["not-a-key", GOOD[:-4], "A" * 44, "ü" * 44],
    # Named, not shown: GOOD is made afresh in each pytest-xdist worker, whose lists must match.
    ids=["not-a-key", "truncated", "not-random", "not-ascii"],
)
def test_a_key_that_is_not_a_fernet_key_is_an_error(settings, bad):
    settings.CREDENTIALS_ENCRYPTION_KEYS = [GOOD, bad]
    problems = credentials_keys_check()
    assert ids(problems) == ["portal.E002"]
    assert bad not in problems[0].msg


def test_no_key_at_all_stops_start_up(settings):
    settings.CREDENTIALS_ENCRYPTION_KEYS = []
    assert ids(credentials_keys_check()) == ["portal.E005"]


def test_a_repeated_key_is_a_warning(settings):
    settings.CREDENTIALS_ENCRYPTION_KEYS = [GOOD, GOOD]
    assert ids(credentials_keys_check()) == ["portal.W002"]


def test_a_negative_proxy_count_is_an_error(settings):
    settings.TRUSTED_PROXY_COUNT = -1
    assert ids(trusted_proxy_check()) == ["portal.E003"]


def test_the_checks_are_registered(settings):
    settings.CREDENTIALS_ENCRYPTION_KEYS = [settings.SECRET_KEY]
    assert "portal.E001" in ids(checks.run_checks(tags=[checks.Tags.security]))


def test_manage_py_check_refuses_to_start_with_the_secret_key_as_encryption_key():
    secret = Fernet.generate_key().decode()
    env = dict(os.environ, SECRET_KEY=secret, CREDENTIALS_ENCRYPTION_KEYS=secret, DEBUG="true")
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "portal.E001" in done.stderr
    assert secret not in done.stderr + done.stdout


def test_the_default_rate_limit_passes():
    from portal.checks import crazytel_rate_limit_check

    assert crazytel_rate_limit_check() == []


@pytest.mark.parametrize(
    ("per_minute", "window", "expected"),
    [
        (61, 60.0, "portal.W003"),
        (55, 30.0, "portal.W003"),
        (0, 60.0, "portal.E004"),
        (55, 0.0, "portal.E004"),
    ],
)
def test_a_rate_limit_beyond_crazytels_or_nonsense_is_flagged(
    settings, per_minute, window, expected
):
    from portal.checks import crazytel_rate_limit_check

    settings.CRAZYTEL_RATE_LIMIT_PER_MINUTE = per_minute
    settings.CRAZYTEL_RATE_LIMIT_WINDOW = window
    assert ids(crazytel_rate_limit_check()) == [expected]
