"""The skeleton: login required everywhere but login/healthz/static, /healthz, settings, htmx."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.contrib.staticfiles import finders
from django.urls import reverse

from tests.processes import gunicorn_started

ROOT = Path(__file__).resolve().parents[2]


def test_login_page_is_public(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b'name="username"' in response.content
    assert b'for="id_password"' in response.content


@pytest.mark.parametrize("path", ["/", "/admin/"])
def test_the_home_page_and_the_admin_redirect_an_anonymous_visitor_to_login(client, db, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(("/accounts/login/", "/admin/login/"))


def test_root_redirects_anonymous_to_login(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


def test_user_logs_in_and_out(client, charlie, password):
    response = client.post(reverse("login"), {"username": "charlie", "password": password})
    assert response.status_code == 302
    page = client.get("/")
    assert page.status_code == 200
    assert b"You do not belong to any tenant yet" in page.content
    # Logout is a POST; a GET does nothing.
    assert client.get(reverse("logout")).status_code == 405
    assert client.post(reverse("logout")).status_code == 302
    assert client.get("/").status_code == 302


def test_wrong_password_shows_a_clear_message(client, charlie):
    response = client.post(reverse("login"), {"username": "charlie", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content
    assert b'aria-describedby="login-errors"' in response.content


def test_base_template_serves_htmx_locally_with_csrf_header(client, charlie):
    client.force_login(charlie)
    html = client.get("/").content.decode()
    # django-htmx's bundled htmx, from our own static files, with the page's CSP nonce.
    assert re.search(
        r'<script src="/static/django_htmx/htmx-2\.min\.js" defer nonce="[^"]+">', html
    )
    assert "http://" not in html.split("<body")[0].replace("http://www.w3.org", "")
    assert 'hx-headers=\'{"x-csrftoken": "' in html
    assert Path(finders.find("django_htmx/htmx-2.min.js")).stat().st_size > 10_000


def test_htmx_request_with_expired_session_redirects_whole_page(client, db):
    response = client.get(
        "/", headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/trunks/new/"}
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/accounts/login/?next=%2Ftrunks%2Fnew%2F"


def test_healthz_reports_database_and_cache(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "cache": "ok"}
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def _serve(extra_env: dict[str, str]):
    env = {**os.environ, "SECURE_SSL_REDIRECT": "false", **extra_env}
    proc, port = gunicorn_started(cwd=ROOT, env=env)
    try:
        # Waits in the socket's backlog until the worker has loaded the app: patient, for a busy
        # machine. Reset, should gunicorn exit instead.
        response = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=(5, 60))
        return proc, response
    except requests.RequestException:
        proc.kill()
        raise


@pytest.mark.parametrize(
    ("env", "failing"),
    [
        ({"DATABASE_URL": "postgres://postgres@127.0.0.1:1/nowhere"}, "database"),
        # Its own SQLite file: the test must not depend on the developer's database existing.
        (
            {
                "CACHE_URL": "redis://127.0.0.1:1/0",
                "DATABASE_URL": "sqlite:////tmp/healthz-probe.sqlite3",
            },
            "cache",
        ),
    ],
)
def test_healthz_answers_503_naming_the_part_that_is_down(env, failing):
    # The sandbox is off, as in production: the WSGI start-up refuses it without DEBUG.
    proc, response = _serve({"DEBUG": "false", "SANDBOX_ENABLED": "false", **env})
    try:
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "error"
        assert body[failing] == "unavailable"
        other = {"database", "cache"} - {failing}
        assert body[other.pop()] == "ok"
    finally:
        proc.terminate()
        proc.wait(10)


PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "x" * 30 + "-production-like-secret-key-for-the-check",
    "ALLOWED_HOSTS": "portal.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://portal.example.com",
    "SANDBOX_ENABLED": "false",
    "CREDENTIALS_ENCRYPTION_KEYS": "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg=",
    "AUDIT_CHECKPOINT_KEY": "production-like-audit-checkpoint-key-0123456789",
}


def _check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_is_clean_with_production_values():
    result = _check_deploy(PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_unclear_boolean_stops_start_up():
    result = _check_deploy({**PRODUCTION_ENV, "DEBUG": "maybe"})
    assert result.returncode != 0
    assert "DEBUG must be one of" in result.stderr


def test_missing_secret_key_stops_start_up_without_debug():
    result = _check_deploy({**PRODUCTION_ENV, "SECRET_KEY": ""})
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
