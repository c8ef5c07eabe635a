"""The sandbox's own rules: Crazytel's documented behaviour, its rate limit, and fault injection."""

import importlib
import json
import re
import time
from decimal import Decimal

import pytest
from django.core.checks import Tags, registry
from django.core.exceptions import ValidationError
from django.test import Client, override_settings
from django.urls import clear_url_caches

from tests.conftest import SANDBOX_KEY
from trunks.sandbox import services
from trunks.sandbox.checks import sandbox_disabled_in_production
from trunks.sandbox.models import NumbersShape, SandboxAccount, SandboxTrunk
from trunks.sandbox.services import (
    sandbox_account_ensure,
    sandbox_faults_clear,
    sandbox_faults_set,
    sandbox_rate_limit_hit,
    sandbox_username_new,
)

API = "/sandbox/api/v1"
PASSWORD = "Tr0ubadour2024"


@pytest.fixture
def api(client):
    """An anonymous HTTP client (no portal login, CSRF enforced) that speaks to the sandbox."""
    csrf_client = Client(enforce_csrf_checks=True)

    class Api:
        def get(self, path, key=SANDBOX_KEY):
            headers = {"x-crazytel-api-key": key} if key is not None else {}
            return csrf_client.get(f"{API}{path}", headers=headers)

        def post(self, path, body, key=SANDBOX_KEY, raw=False):
            headers = {"x-crazytel-api-key": key} if key is not None else {}
            data = body if raw else json.dumps(body)
            return csrf_client.post(
                f"{API}{path}", data=data, content_type="application/json", headers=headers
            )

        def create(self, **fields):
            return self.post("/sip-trunks/", fields)

    return Api()


def landline(account):
    return next(n["number"] for n in account.verified_numbers if n["number"].startswith("612"))


def mobile(account):
    return next(n["number"] for n in account.verified_numbers if n["number"].startswith("614"))


def valid(account, **overrides):
    return {"password": PASSWORD, "caller_id_number": landline(account), **overrides}


# --- Accounts ---------------------------------------------------------------------------------


def test_a_new_account_has_a_realistic_mix_of_numbers(db):
    account = sandbox_account_ensure(name="Mix")
    prefixes = {n["number"][:3] for n in account.verified_numbers}
    assert {"612", "613", "617", "618", "614"} <= prefixes
    assert all(re.fullmatch(r"61\d{9}", n["number"]) for n in account.verified_numbers)
    assert any(n["label"] for n in account.verified_numbers)
    assert any(not n["label"] for n in account.verified_numbers)
    assert account.api_key.startswith("ctsbx_") and len(account.api_key) > 30
    assert re.fullmatch(r"\d{7}", account.account_code)


def test_ensuring_an_account_is_idempotent_and_can_set_its_key(db):
    first = sandbox_account_ensure(name="Same")
    again = sandbox_account_ensure(name="Same")
    assert again.pk == first.pk and again.verified_numbers == first.verified_numbers
    rekeyed = sandbox_account_ensure(name="Same", api_key="new-key-12345")
    assert rekeyed.pk == first.pk and rekeyed.api_key == "new-key-12345"
    assert SandboxAccount.objects.count() == 1


def test_a_key_cannot_belong_to_two_accounts(sandbox_account):
    with pytest.raises(ValueError, match="another sandbox account"):
        sandbox_account_ensure(name="Other", api_key=SANDBOX_KEY)


@pytest.mark.parametrize(
    "numbers",
    [
        {"number": "61298765432"},
        [{"number": 61298765432}],
        [{"number": "+61 2 9876"}],
        [{"label": "no number"}],
        [{"number": "61298765432", "label": 5}],
        [{"number": "61298765432", "extra": "x"}],
    ],
)
def test_badly_shaped_verified_numbers_are_refused(sandbox_account, numbers):
    sandbox_account.verified_numbers = numbers
    with pytest.raises(ValidationError):
        sandbox_account.full_clean()


# --- Authentication and the door ------------------------------------------------------------


def test_the_sandbox_is_on_in_tests(settings):
    assert settings.SANDBOX_ENABLED is True


@pytest.mark.parametrize("path", ["/balance/", "/account/verified-cli/"])
def test_a_missing_key_is_401_not_authenticated(api, sandbox_account, path):
    response = api.get(path, key=None)
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}


def test_a_wrong_key_is_401(api, sandbox_account):
    response = api.post("/sip-trunks/", valid(sandbox_account), key="wrong")
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid API key"}
    assert not SandboxTrunk.objects.exists()


def test_it_needs_neither_a_portal_login_nor_a_csrf_token(api, sandbox_account):
    # `api` is anonymous and enforces CSRF: Crazytel's callers have neither.
    assert api.create(**valid(sandbox_account)).status_code == 200


def test_other_methods_and_paths_answer_like_fastapi(api, sandbox_account):
    response = api.post("/balance/", {})
    assert response.status_code == 405
    assert response.json() == {"detail": "Method Not Allowed"}
    # A trunk's path takes PATCH only (FastAPI answers 405 to other methods on a known path).
    response = api.get("/sip-trunks/some-id")
    assert response.status_code == 405
    assert response.json() == {"detail": "Method Not Allowed"}
    response = api.get("/sip-trunks/some-id/more")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


@override_settings(SANDBOX_ENABLED=False)
def test_every_endpoint_is_404_when_the_sandbox_is_off(api, sandbox_account):
    for path in ("/balance/", "/account/verified-cli/", "/nothing"):
        assert api.get(path).status_code == 404
    assert api.create(**valid(sandbox_account)).status_code == 404
    assert not SandboxTrunk.objects.exists()


def test_the_sandbox_urls_are_not_mounted_when_off(settings):
    import portal.urls

    try:
        settings.SANDBOX_ENABLED = False
        module = importlib.reload(portal.urls)
        assert not any("sandbox" in str(p.pattern) for p in module.urlpatterns)
        settings.SANDBOX_ENABLED = True
        module = importlib.reload(portal.urls)
        assert any("sandbox" in str(p.pattern) for p in module.urlpatterns)
    finally:
        settings.SANDBOX_ENABLED = True
        importlib.reload(portal.urls)
        clear_url_caches()


@pytest.mark.parametrize(
    ("enabled", "debug", "errors"), [(True, False, 1), (True, True, 0), (False, False, 0)]
)
def test_check_refuses_the_sandbox_without_debug_not_only_under_deploy(
    settings, enabled, debug, errors
):
    settings.SANDBOX_ENABLED = enabled
    settings.DEBUG = debug
    assert len(sandbox_disabled_in_production(None)) == errors
    for deploy in (True, False):
        found = registry.run_checks(tags=[Tags.security], include_deployment_checks=deploy)
        assert ("sandbox.E001" in {c.id for c in found}) is bool(errors)


def test_the_wsgi_start_up_refuses_the_sandbox_without_debug(tmp_path):
    """gunicorn imports portal.wsgi: with the sandbox on and DEBUG off it must not get an app."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from cryptography.fernet import Fernet

    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'wsgi.sqlite3'}",
        "CACHE_URL": "locmemcache://wsgi",
        "SECRET_KEY": "x" * 60,
        "CREDENTIALS_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "127.0.0.1",
        "DEBUG": "false",
    }
    load = [sys.executable, "-c", "import portal.wsgi"]
    refused = subprocess.run(
        load, cwd=root, env={**env, "SANDBOX_ENABLED": "true"}, capture_output=True, text=True
    )
    assert refused.returncode != 0
    assert "sandbox.E001" in refused.stderr
    started = subprocess.run(
        load, cwd=root, env={**env, "SANDBOX_ENABLED": "false"}, capture_output=True, text=True
    )
    assert started.returncode == 0, started.stderr


# --- Balance and numbers ----------------------------------------------------------------------


def test_balance_answers_the_account_code_and_balance(api, sandbox_account):
    sandbox_account.balance = Decimal("2405.44")
    sandbox_account.save()
    response = api.get("/balance/")
    assert response.status_code == 200
    assert response.json() == {"account_code": sandbox_account.account_code, "balance": 2405.44}


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        (NumbersShape.OBJECTS, lambda ns: ns),
        (NumbersShape.STRINGS, lambda ns: [n["number"] for n in ns]),
        (
            NumbersShape.WRAPPED,
            lambda ns: {
                "results": [{"cli": n["number"], "description": n["label"]} for n in ns],
                "count": len(ns),
            },
        ),
    ],
)
def test_verified_numbers_come_in_the_chosen_shape(api, sandbox_account, shape, expected):
    sandbox_account.numbers_shape = shape
    sandbox_account.save()
    response = api.get("/account/verified-cli/")
    assert response.status_code == 200
    assert response.json() == expected(sandbox_account.verified_numbers)


# --- Creating a trunk -----------------------------------------------------------------------


def test_it_creates_a_trunk_with_a_ct_username_and_keeps_no_password(api, sandbox_account):
    response = api.create(
        **valid(
            sandbox_account,
            sms_sender=mobile(sandbox_account),
            description="Front desk",
            area_code="02",
            hide_caller_id=True,
            softphone_sync_sms=True,
        )
    )
    assert response.status_code == 200
    body = response.json()
    assert re.fullmatch(r"CT\d{6}", body["username"])
    assert "password" not in json.dumps(body).lower().replace("softphone", "")
    trunk = SandboxTrunk.objects.get()
    assert str(trunk.id) == body["id"]
    assert (trunk.username, trunk.account) == (body["username"], sandbox_account)
    assert trunk.caller_id_number == landline(sandbox_account)
    assert trunk.sms_sender == mobile(sandbox_account)
    assert (trunk.description, trunk.area_code) == ("Front desk", "02")
    assert trunk.hide_caller_id is True and trunk.softphone_sync_sms is True
    assert trunk.enabled is True and trunk.softphone_show_balance is True  # defaults
    assert PASSWORD not in trunk.password_digest
    assert trunk.check_password(PASSWORD) and not trunk.check_password("Other1234")
    assert body["enabled"] is True and body["sms_sender"] == mobile(sandbox_account)


def test_usernames_are_unique(api, sandbox_account):
    usernames = {api.create(**valid(sandbox_account)).json()["username"] for _ in range(25)}
    assert len(usernames) == 25 == SandboxTrunk.objects.count()


def test_a_new_username_skips_one_already_taken(sandbox_account, monkeypatch):
    SandboxTrunk.objects.create(
        account=sandbox_account, username="CT000001", caller_id_number="61298765432"
    )
    draws = iter([1, 1, 2])
    monkeypatch.setattr(services.secrets, "randbelow", lambda n: next(draws))
    assert sandbox_username_new() == "CT000002"


def test_numbers_written_with_plus_and_spaces_are_recognised(api, sandbox_account):
    number = landline(sandbox_account)
    spaced = f"+{number[:2]} {number[2]} {number[3:7]}-{number[7:]}"
    assert api.create(password=PASSWORD, caller_id_number=spaced).status_code == 200
    assert SandboxTrunk.objects.get().caller_id_number == number


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("Ab1", "at least 8 characters"),
        ("lowercase123", "1 uppercase letter"),
        ("UPPERCASE123", "1 lowercase letter"),
        ("NoDigitsHere", "1 number"),
    ],
)
def test_it_refuses_a_password_breaking_a_rule_with_fastapi_422(
    api, sandbox_account, password, message
):
    response = api.create(**valid(sandbox_account, password=password))
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert any(
        e["loc"] == ["body", "password"] and message in e["msg"] and e["type"] == "value_error"
        for e in errors
    )
    assert not SandboxTrunk.objects.exists()


def test_a_short_lowercase_password_gets_one_error_per_rule(api, sandbox_account):
    response = api.create(**valid(sandbox_account, password="abc"))
    msgs = [e["msg"] for e in response.json()["detail"]]
    assert len(msgs) == 3


@pytest.mark.parametrize(
    ("body", "loc", "type_"),
    [
        ({"caller_id_number": "61298765432"}, ["body", "password"], "missing"),
        ({"password": PASSWORD}, ["body", "caller_id_number"], "missing"),
        ({"password": 12345678, "caller_id_number": "x"}, ["body", "password"], "string_type"),
        (
            {"password": PASSWORD, "caller_id_number": 61298765432},
            ["body", "caller_id_number"],
            "string_type",
        ),
        (
            {"password": PASSWORD, "caller_id_number": "x", "enabled": "yes"},
            ["body", "enabled"],
            "bool_type",
        ),
        (
            {"password": PASSWORD, "caller_id_number": "x", "description": "d" * 256},
            ["body", "description"],
            "string_too_long",
        ),
        (
            {"password": PASSWORD, "caller_id_number": "x", "area_code": ["02"]},
            ["body", "area_code"],
            "string_type",
        ),
        (["not", "an", "object"], ["body"], "model_attributes_type"),
    ],
)
def test_it_validates_the_body_like_fastapi(api, sandbox_account, body, loc, type_):
    response = api.post("/sip-trunks/", body)
    assert response.status_code == 422
    assert any(e["loc"] == loc and e["type"] == type_ for e in response.json()["detail"])


def test_invalid_json_is_a_422_json_invalid(api, sandbox_account):
    response = api.post("/sip-trunks/", '{"password": ', raw=True)
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_it_refuses_a_caller_id_that_is_not_verified(api, sandbox_account):
    response = api.create(password=PASSWORD, caller_id_number="61299990000")
    assert response.status_code == 400
    assert response.json() == {
        "detail": "Caller ID number 61299990000 is not verified for this account"
    }


def test_it_refuses_sms_sender_not_starting_614(api, sandbox_account):
    response = api.create(**valid(sandbox_account, sms_sender=landline(sandbox_account)))
    assert response.status_code == 400
    assert response.json() == {"detail": "SMS sender must start with 614"}


def test_it_refuses_an_sms_sender_that_is_not_verified(api, sandbox_account):
    response = api.create(**valid(sandbox_account, sms_sender="61400000000"))
    assert response.status_code == 400
    assert "SMS sender 61400000000 is not verified" in response.json()["detail"]


def test_a_number_of_another_account_is_not_verified_here(api, sandbox_account):
    other = sandbox_account_ensure(name="Other account")
    response = api.create(password=PASSWORD, caller_id_number=landline(other))
    assert response.status_code == 400


def test_an_empty_sms_sender_means_none(api, sandbox_account):
    assert api.create(**valid(sandbox_account, sms_sender="")).status_code == 200
    assert api.create(**valid(sandbox_account, sms_sender=None)).status_code == 200


# --- Rate limit ---------------------------------------------------------------------------------


def test_the_61st_request_in_a_minute_is_429_with_retry_after(api, sandbox_account, monkeypatch):
    monkeypatch.setattr(services, "_clock", lambda: 1_800_000_015.0)  # 15 s into a minute
    statuses = [api.get("/balance/").status_code for _ in range(60)]
    assert statuses == [200] * 60
    response = api.get("/balance/")
    assert response.status_code == 429
    assert response["Retry-After"] == "45"
    assert "60 requests per minute" in response.json()["detail"]
    # Another key has its own budget.
    other = sandbox_account_ensure(name="Other", api_key="other-key-123456")
    assert api.get("/balance/", key=other.api_key).status_code == 200


def test_the_limit_counts_per_minute_window(sandbox_account):
    sandbox_account.rate_limit_per_minute = 2
    start = 1_800_000_000.0  # the first second of a minute
    assert sandbox_rate_limit_hit(account=sandbox_account, now=start) is None
    assert sandbox_rate_limit_hit(account=sandbox_account, now=start + 1) is None
    assert sandbox_rate_limit_hit(account=sandbox_account, now=start + 20) == pytest.approx(40)
    assert sandbox_rate_limit_hit(account=sandbox_account, now=start + 60) is None


def test_a_limit_of_zero_turns_the_limit_off(api, sandbox_account):
    sandbox_account.rate_limit_per_minute = 0
    assert sandbox_rate_limit_hit(account=sandbox_account) is None


def test_an_unknown_key_is_not_counted(api, sandbox_account):
    from trunks.sandbox.models import SandboxRateWindow

    api.get("/balance/", key="nobody")
    assert not SandboxRateWindow.objects.exists()


# --- Faults ---------------------------------------------------------------------------------------


def test_fault_setters_refuse_unknown_settings_and_bad_values(sandbox_account):
    with pytest.raises(ValueError, match="Not sandbox fault settings: colour"):
        sandbox_faults_set(account=sandbox_account, colour="red")
    with pytest.raises(ValidationError):
        sandbox_faults_set(account=sandbox_account, forced_status=200)


def test_added_latency_delays_the_answer(api, sandbox_account):
    sandbox_faults_set(account=sandbox_account, latency_ms=150, fault_scope="all")
    started = time.monotonic()
    assert api.get("/balance/").status_code == 200
    assert time.monotonic() - started >= 0.15


@pytest.mark.parametrize("status", [400, 401, 422, 429, 500, 503])
def test_a_forced_status_answers_json_detail(api, sandbox_account, status):
    sandbox_faults_set(account=sandbox_account, forced_status=status, retry_after=9)
    response = api.create(**valid(sandbox_account))
    assert response.status_code == status
    assert isinstance(response.json()["detail"], str)
    assert response["Retry-After"] == "9"
    assert not SandboxTrunk.objects.exists()


@pytest.mark.parametrize(("forced", "expected"), [(None, 502), (503, 503)])
def test_an_html_error_page(api, sandbox_account, forced, expected):
    sandbox_faults_set(account=sandbox_account, html_error=True, forced_status=forced)
    response = api.create(**valid(sandbox_account))
    assert response.status_code == expected
    assert response["Content-Type"].startswith("text/html")
    assert f"<title>{expected} " in response.content.decode()


def test_malformed_json(api, sandbox_account):
    sandbox_faults_set(account=sandbox_account, malformed_json=True)
    response = api.create(**valid(sandbox_account))
    assert response.status_code == 200
    with pytest.raises(ValueError):
        json.loads(response.content)


def test_a_create_answered_without_a_valid_username(api, sandbox_account):
    sandbox_faults_set(account=sandbox_account, invalid_username=True)
    response = api.create(**valid(sandbox_account))
    assert response.status_code == 200
    assert not re.fullmatch(r"CT\d{6}", response.json()["username"])


def test_a_dropped_connection_gives_no_answer(api, sandbox_account):
    sandbox_faults_set(account=sandbox_account, drop_connection=True)
    response = api.create(**valid(sandbox_account))
    with pytest.raises(ConnectionResetError):
        b"".join(response.streaming_content)
    assert not SandboxTrunk.objects.exists()


def test_create_then_time_out_creates_the_trunk_then_waits(api, sandbox_account):
    sandbox_faults_set(account=sandbox_account, create_then_timeout=True, timeout_sleep_ms=200)
    started = time.monotonic()
    response = api.create(**valid(sandbox_account))
    assert time.monotonic() - started >= 0.2
    assert response.status_code == 200
    assert SandboxTrunk.objects.get().username == response.json()["username"]


def test_the_timeout_sleep_defaults_past_the_portals_read_timeout(
    api, sandbox_account, settings, monkeypatch
):
    from trunks.sandbox import views

    slept = []
    monkeypatch.setattr(views.time, "sleep", slept.append)
    settings.CRAZYTEL_TIMEOUT = 20.0
    sandbox_faults_set(account=sandbox_account, create_then_timeout=True)
    api.create(**valid(sandbox_account))
    assert slept == [25.0]


def test_create_scoped_faults_leave_reads_alone_and_vice_versa(api, sandbox_account):
    sandbox_faults_set(account=sandbox_account, forced_status=500)
    assert api.get("/balance/").status_code == 200
    assert api.create(**valid(sandbox_account)).status_code == 500
    sandbox_faults_set(account=sandbox_account, fault_scope="reads")
    assert api.get("/account/verified-cli/").status_code == 500
    assert api.create(**valid(sandbox_account)).status_code == 200
    sandbox_faults_set(account=sandbox_account, fault_scope="all")
    assert api.get("/balance/").status_code == 500


def test_a_fault_can_apply_to_a_number_of_requests_only(api, sandbox_account):
    sandbox_faults_set(account=sandbox_account, forced_status=500, fault_remaining=2)
    statuses = [api.create(**valid(sandbox_account)).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    sandbox_account.refresh_from_db()
    assert sandbox_account.fault_remaining == 0


def test_a_request_answers_with_the_faults_set_when_it_counts_one_down(
    api, sandbox_account, monkeypatch
):
    """A request loads its account, then counts a fault down: faults replaced in between (the next
    fault of a test, an admin's change) are answered as they are now, never as the old settings
    with the new count (found by the bulk fault test: a 429 answered where a lost answer was set)."""
    from trunks.sandbox import views

    sandbox_faults_set(account=sandbox_account, forced_status=429, fault_remaining=1)
    assert api.create(**valid(sandbox_account)).status_code == 429
    real = views._fault_applies

    def replaced_meanwhile(account, kind):
        # This request's account says 429 (spent); the next fault is set before it counts down.
        sandbox_faults_set(
            account=SandboxAccount.objects.get(pk=account.pk),
            forced_status=None,
            retry_after=None,
            drop_connection=False,
            html_error=True,
            fault_remaining=1,
        )
        return real(account, kind)

    monkeypatch.setattr(views, "_fault_applies", replaced_meanwhile)
    response = api.create(**valid(sandbox_account))
    assert response.status_code == 502 and b"nginx" in response.content
    sandbox_account.refresh_from_db()
    assert sandbox_account.fault_remaining == 0
    monkeypatch.setattr(views, "_fault_applies", real)
    assert api.create(**valid(sandbox_account)).status_code == 200


def test_faults_cleared_while_a_request_arrives_do_not_apply_to_it(sandbox_account):
    stale = SandboxAccount.objects.get(pk=sandbox_account.pk)
    sandbox_faults_set(account=sandbox_account, forced_status=500)
    stale.forced_status = 500  # as loaded just before the faults were cleared
    sandbox_faults_clear(account=sandbox_account)
    assert services.sandbox_fault_consume(account=stale, kind="create") is False
    assert stale.forced_status is None


def test_clearing_faults_restores_a_well_behaved_crazytel(api, sandbox_account):
    sandbox_faults_set(
        account=sandbox_account,
        forced_status=500,
        html_error=True,
        drop_connection=True,
        latency_ms=5,
    )
    sandbox_faults_clear(account=sandbox_account)
    sandbox_account.refresh_from_db()
    assert not sandbox_account.has_faults
    assert api.create(**valid(sandbox_account)).status_code == 200


def test_authentication_comes_before_faults(api, sandbox_account):
    sandbox_faults_set(account=sandbox_account, forced_status=500, fault_scope="all")
    assert api.get("/balance/", key="wrong").status_code == 401


# --- Admin --------------------------------------------------------------------------------------


def test_admin_edits_numbers_and_faults_and_shows_trunks_read_only(
    client, root, api, sandbox_account
):
    api.create(**valid(sandbox_account))
    trunk = SandboxTrunk.objects.get()
    client.force_login(root)
    assert client.get("/admin/sandbox/sandboxaccount/").status_code == 200
    page = client.get(f"/admin/sandbox/sandboxaccount/{sandbox_account.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    for name in (
        "verified_numbers",
        "latency_ms",
        "forced_status",
        "html_error",
        "drop_connection",
        "create_then_timeout",
    ):
        assert f'name="{name}"' in html
    assert trunk.username in html
    detail = client.get(f"/admin/sandbox/sandboxtrunk/{trunk.pk}/change/")
    assert detail.status_code == 200
    assert 'name="username"' not in detail.content.decode()
    assert "password_digest" not in detail.content.decode()
    assert client.get("/admin/sandbox/sandboxtrunk/add/").status_code == 403


def test_admin_refuses_badly_shaped_numbers(client, root, sandbox_account):
    client.force_login(root)
    url = f"/admin/sandbox/sandboxaccount/{sandbox_account.pk}/change/"
    form = {
        "name": sandbox_account.name,
        "new_api_key": "",
        "account_code": sandbox_account.account_code,
        "balance": "10.00",
        "verified_numbers": '[{"number": "not-a-number"}]',
        "numbers_shape": "objects",
        "rate_limit_per_minute": "60",
        "fault_scope": "create",
        "latency_ms": "0",
        "trunks-TOTAL_FORMS": "0",
        "trunks-INITIAL_FORMS": "0",
    }
    response = client.post(url, form)
    assert response.status_code == 200
    assert "is not a number in international form" in response.content.decode()
    form["verified_numbers"] = '[{"number": "61298765432", "label": "Office"}]'
    form["forced_status"] = "503"
    response = client.post(url, form)
    assert response.status_code == 302
    sandbox_account.refresh_from_db()
    assert sandbox_account.verified_numbers == [{"number": "61298765432", "label": "Office"}]
    assert sandbox_account.forced_status == 503
    assert sandbox_account.api_key == SANDBOX_KEY  # left empty: kept
    form["new_api_key"] = "replacement-key-0001"
    assert client.post(url, form).status_code == 302
    sandbox_account.refresh_from_db()
    assert sandbox_account.api_key == "replacement-key-0001"


def test_admin_never_shows_a_sandbox_key(client, root, sandbox_account):
    client.force_login(root)
    for url in (
        "/admin/sandbox/sandboxaccount/",
        f"/admin/sandbox/sandboxaccount/{sandbox_account.pk}/change/",
    ):
        html = client.get(url).content.decode()
        assert SANDBOX_KEY not in html
        assert "••••cdef" in html


def test_admin_adds_an_account_with_a_typed_key(client, root):
    client.force_login(root)
    form = {
        "name": "Typed",
        "new_api_key": "",
        "account_code": "1234567",
        "balance": "5.00",
        "verified_numbers": "[]",
        "numbers_shape": "objects",
        "rate_limit_per_minute": "60",
        "fault_scope": "create",
        "latency_ms": "0",
        "trunks-TOTAL_FORMS": "0",
        "trunks-INITIAL_FORMS": "0",
    }
    response = client.post("/admin/sandbox/sandboxaccount/add/", form)
    assert response.status_code == 200 and not SandboxAccount.objects.exists()
    form["new_api_key"] = "typed-key-123456"
    assert client.post("/admin/sandbox/sandboxaccount/add/", form).status_code == 302
    assert SandboxAccount.objects.get(name="Typed").api_key == "typed-key-123456"


def test_admin_action_clears_faults(client, root, sandbox_account):
    sandbox_faults_set(account=sandbox_account, drop_connection=True)
    client.force_login(root)
    response = client.post(
        "/admin/sandbox/sandboxaccount/",
        {"action": "clear_faults", "_selected_action": [sandbox_account.pk]},
    )
    assert response.status_code == 302
    sandbox_account.refresh_from_db()
    assert not sandbox_account.drop_connection


def test_the_management_command_ensures_an_account_and_prints_its_key(db, monkeypatch):
    import io

    from django.core.management import call_command

    monkeypatch.setattr("sys.stdin", io.StringIO("piped-key-1234567\n"))
    out = io.StringIO()
    call_command("sandbox_account", "Demo", "--api-key-stdin", stdout=out)
    account = SandboxAccount.objects.get(name="Demo")
    assert account.api_key == "piped-key-1234567"
    assert "piped-key-1234567" not in out.getvalue()
    assert "API key: ••••4567" in out.getvalue()
    assert account.verified_numbers[0]["number"] in out.getvalue()
    call_command("sandbox_account", "Demo", stdout=io.StringIO())
    assert SandboxAccount.objects.get(name="Demo").api_key == "piped-key-1234567"
    # A key the command makes up is shown, once, since nobody could learn it otherwise.
    out = io.StringIO()
    call_command("sandbox_account", "Fresh", stdout=out)
    assert f"(shown once): {SandboxAccount.objects.get(name='Fresh').api_key}" in out.getvalue()


# --- PATCH /sip-trunks/{id} ------------------------------------------------------------------------


def _patch(api, trunk_id, body, key=SANDBOX_KEY):
    return Client().patch(
        f"{API}/sip-trunks/{trunk_id}",
        data=json.dumps(body),
        content_type="application/json",
        headers={"x-crazytel-api-key": key},
    )


def test_patch_changes_only_the_fields_sent(api, sandbox_account):
    made = api.create(**valid(sandbox_account), description="Desk").json()
    response = _patch(api, made["id"], {"enabled": False, "username": "CT000001", "id": "x"})
    assert response.status_code == 200
    body = response.json()
    assert body["enabled"] is False and body["description"] == "Desk"
    assert body["username"] == made["username"] and body["id"] == made["id"]
    trunk = SandboxTrunk.objects.get(id=made["id"])
    assert trunk.enabled is False and trunk.description == "Desk"


def test_patch_applies_the_create_rules(api, sandbox_account):
    made = api.create(**valid(sandbox_account)).json()
    weak = _patch(api, made["id"], {"password": "short"})
    assert weak.status_code == 422 and weak.json()["detail"][0]["loc"] == ["body", "password"]
    assert _patch(api, made["id"], {"caller_id_number": "61200000000"}).status_code == 400
    assert _patch(api, made["id"], {"sms_sender": landline(sandbox_account)}).status_code == 400
    assert _patch(api, made["id"], {"hide_caller_id": "yes"}).status_code == 422
    new = _patch(api, made["id"], {"password": "An0therGoodOne"})
    assert new.status_code == 200 and "password" not in new.json()
    assert SandboxTrunk.objects.get(id=made["id"]).check_password("An0therGoodOne")


def test_patch_of_an_unknown_or_another_accounts_trunk_is_404(api, sandbox_account):
    made = api.create(**valid(sandbox_account)).json()
    assert (
        _patch(api, "00000000-0000-0000-0000-000000000000", {"enabled": False}).status_code == 404
    )
    assert _patch(api, "not-a-uuid", {"enabled": False}).status_code == 404
    other = sandbox_account_ensure(name="Other account")
    assert _patch(api, made["id"], {"enabled": False}, key=other.api_key).status_code == 404


def test_patch_gets_the_same_faults_as_create(api, sandbox_account):
    made = api.create(**valid(sandbox_account)).json()
    sandbox_faults_set(account=sandbox_account, forced_status=500, fault_remaining=1)
    assert _patch(api, made["id"], {"enabled": False}).status_code == 500
    assert SandboxTrunk.objects.get(id=made["id"]).enabled is True
