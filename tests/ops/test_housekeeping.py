"""Housekeeping: django-axes' records pruned; no deprecated e-mail settings left."""

import io
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from portal.tasks import prune_axes_records


def _aged(model, days_old: float, **fields):
    values = {
        "user_agent": "ua",
        "ip_address": "192.0.2.1",
        "username": "alice",
        "http_accept": "*/*",
        "path_info": "/accounts/login/",
    }
    record = model.objects.create(**{**values, **fields})
    model.objects.filter(pk=record.pk).update(
        attempt_time=timezone.now() - timedelta(days=days_old)
    )
    return record


@pytest.fixture
def axes_records(db):
    return {
        "old_log": _aged(AccessLog, 100),
        "new_log": _aged(AccessLog, 10),
        "old_failure": _aged(AccessFailureLog, 100),
        "new_failure": _aged(AccessFailureLog, 1),
        "expired_attempt": _aged(AccessAttempt, 1, failures_since_start=3),
        "live_attempt": _aged(AccessAttempt, 0, failures_since_start=2, username="bob"),
    }


def test_the_command_prunes_old_logs_and_expired_counters(axes_records, settings):
    settings.AXES_RECORDS_RETENTION_DAYS = 90
    out = io.StringIO()
    call_command("axes_prune", stdout=out)
    assert "Deleted 1 access log(s) and 1 failure log(s) older than 90 day(s)" in out.getvalue()
    assert "1 expired failure counter(s)" in out.getvalue()
    assert set(AccessLog.objects.values_list("pk", flat=True)) == {axes_records["new_log"].pk}
    assert set(AccessFailureLog.objects.values_list("pk", flat=True)) == {
        axes_records["new_failure"].pk
    }
    # A counter still inside its cool-off keeps locking.
    assert set(AccessAttempt.objects.values_list("pk", flat=True)) == {
        axes_records["live_attempt"].pk
    }


def test_the_task_prunes_with_its_own_age(axes_records, settings):
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    result = prune_axes_records.enqueue(older_than_days=5)
    assert result.return_value == {"access_logs": 2, "failure_logs": 1, "attempts": 1}


def test_the_command_refuses_a_nonsense_age(db):
    with pytest.raises(CommandError, match="--days"):
        call_command("axes_prune", days=0, stdout=io.StringIO())


SETUP = """
import warnings
warnings.simplefilter("error")
import django
django.setup()
from django.test.utils import setup_test_environment
setup_test_environment()
print("clean")
"""


def test_no_deprecated_email_setting_warns():
    """Django 6.1 deprecates EMAIL_BACKEND & co. for MAILERS; the portal uses MAILERS only."""
    assert django_settings.is_overridden("MAILERS")
    done = subprocess.run(
        [sys.executable, "-c", SETUP],
        cwd=django_settings.BASE_DIR,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DEBUG": "false",
            "SECRET_KEY": "s" * 50,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "clean"
