"""/trunks/new/: the form, the tenant picker, every outcome shown, no double trunks."""

import re
import threading
from html import unescape

import pytest
import requests
import responses
from django.db import connection
from django.template.response import SimpleTemplateResponse
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import MembershipFactory
from tests.provisioning.faults import FAILURES
from tests.trunk_fixtures import (
    API_KEY_A,
    CANARY,
    NUMBERS_URL,
    TRUNKS_URL,
    VALID,
    create_calls,
    created,
    sent_json,
    token_from,
)
from trunks.models import AuditRecord, AuditStatus, Role
from trunks.provisioning.passwords import password_failures
from trunks.provisioning.tokens import submission_token_issue

URL = "/trunks/new/"
HX = {"HX-Request": "true"}


@pytest.fixture
def staff(client, alice, keyed_a):
    client.force_login(alice)
    return client


def _post(client, data=None, *, token=None, htmx=False, **overrides):
    if token is None:
        page = client.get(URL, {"tenant": overrides["tenant"]}) if overrides.get("tenant") else None
        if page is None or page.status_code != 200:
            page = client.get(URL)
        token = token_from(page.content.decode())
    body = {**VALID, **(data or {}), "submission_token": token, **overrides}
    body = {k: v for k, v in body.items() if v is not None}
    return client.post(URL, body, headers=HX if htmx else {})


def _no_canary_anywhere(response=None):
    if response is not None:
        assert CANARY not in response.content.decode()
    for record in AuditRecord.objects.all():
        assert CANARY not in repr(record.__dict__)
    from django.contrib.sessions.models import Session

    for session in Session.objects.all():
        assert CANARY not in str(session.get_decoded())


# --- the empty form ---------------------------------------------------------------------------------


def test_the_form_lists_verified_numbers_in_national_format_with_labels(staff, crazytel):
    response = staff.get(URL)
    html = response.content.decode()
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert '<option value="61298765432">02 9876 5432 — Sydney office</option>' in html
    assert '<option value="61412345678">0412 345 678 — Ops mobile</option>' in html
    sms = html[
        html.index('name="sms_sender"') : html.index("</select>", html.index('name="sms_sender"'))
    ]
    assert re.findall(r'<option value="(\d*)"', sms) == ["", "61412345678", "61487654321"]
    assert ">None</option>" in sms


def test_every_field_is_named_as_the_api_names_it_with_the_documented_defaults(staff, crazytel):
    html = staff.get(URL).content.decode()
    for name in [
        "caller_id_number",
        "sms_sender",
        "password",
        "description",
        "area_code",
        "enabled",
        "hide_caller_id",
        "softphone_show_balance",
        "softphone_sync_sms",
    ]:
        assert f'name="{name}"' in html
    assert re.search(r'name="enabled"[^>]*checked', html)
    assert re.search(r'name="softphone_show_balance"[^>]*checked', html)
    assert not re.search(r'name="hide_caller_id"[^>]*checked', html)
    assert not re.search(r'name="softphone_sync_sms"[^>]*checked', html)
    assert "international call connectivity" in html
    for code, region in [
        ("02", "NSW / ACT"),
        ("03", "VIC / TAS"),
        ("07", "QLD"),
        ("08", "SA / WA / NT"),
    ]:
        assert f'<option value="{code}">{code} — {region}</option>' in html


def test_every_control_has_a_label_and_help_tied_by_aria_describedby(staff, crazytel):
    html = staff.get(URL).content.decode()
    for control_id in re.findall(r'<(?:input|select|textarea)[^>]*\bid="([^"]+)"', html):
        if control_id.startswith("id_"):
            assert f'for="{control_id}"' in html, control_id
    for described in re.findall(r'aria-describedby="([^"]+)"', html):
        for ref in described.split():
            assert f'id="{ref}"' in html, ref


def test_the_page_carries_the_password_rules_for_the_live_checklist_and_no_inline_script(
    staff, crazytel
):
    response = staff.get(URL)
    html = response.content.decode()
    assert '<script id="password-rules" type="application/json">' in html
    assert 'data-rule="upper"' in html and 'aria-live="polite"' in html
    assert "/static/js/trunk_form.js" in html
    # Scripts are files with the CSP nonce, or JSON data: never inline code.
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert 'type="application/json"' in tag or ("src=" in tag and "nonce=" in tag), tag
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]


def test_the_form_never_renders_the_api_key(staff, crazytel):
    assert API_KEY_A not in staff.get(URL).content.decode()


def test_a_user_with_one_tenant_never_sees_the_picker(staff, crazytel):
    assert 'name="tenant"' in staff.get(URL).content.decode()  # the hidden field only
    assert "id_tenant_picker" not in staff.get(URL).content.decode()


def test_someone_in_no_tenant_is_told_so(client, charlie):
    client.force_login(charlie)
    response = client.get(URL)
    assert response.status_code == 403
    assert "not staff in any tenant" in response.content.decode()


def test_login_is_required(client, db):
    assert client.get(URL).status_code == 302


# --- the tenant picker ------------------------------------------------------------------------------


@pytest.fixture
def two_tenant_staff(client, alice, keyed_a, keyed_b, crazytel):
    MembershipFactory(user=alice, tenant=keyed_b, role=Role.STAFF)
    crazytel.get(
        "https://crazytel-b.test/api/v1/account/verified-cli/",
        json={"results": [{"did": "61299990000", "label": "Bravo HQ"}, {"did": "61400001111"}]},
    )
    client.force_login(alice)
    return client


def test_a_user_in_several_tenants_picks_one_and_it_is_remembered(two_tenant_staff):
    client = two_tenant_staff
    html = client.get(URL).content.decode()
    assert 'id="id_tenant_picker"' in html
    assert "Alpha Telecom" in html and "Bravo Networks" in html
    html = client.get(URL + "?tenant=bravo").content.decode()
    assert "02 9999 0000 — Bravo HQ" in html
    assert "Sydney office" not in html
    # Remembered in the session.
    html = client.get(URL).content.decode()
    assert '<option value="bravo" selected>' in html
    assert "Bravo HQ" in html


def test_with_several_tenants_and_none_chosen_the_form_asks_instead_of_picking_one(
    two_tenant_staff, crazytel
):
    """Issue 16: a tenant that sorts first (one an admin put the person in, perhaps) never
    becomes the trunk's tenant by default: the form asks, and a POST naming none sends nothing."""
    client = two_tenant_staff
    html = client.get(URL).content.decode()
    assert "Which tenant is this trunk for?" in html
    assert '<option value="" selected disabled>Choose a tenant…</option>' in html
    assert " selected>Alpha Telecom" not in html and 'name="submission_token"' not in html
    assert "trunks.create.tenant" not in client.session

    token = submission_token_issue(user=_alice(client))
    response = client.post(URL, {**VALID, "submission_token": token})
    assert response.status_code == 200
    assert "Choose the tenant first: nothing was sent to Crazytel." in response.content.decode()
    assert AuditRecord.objects.count() == 0
    assert create_calls(crazytel) == []


def test_the_chosen_tenant_is_named_beside_the_submit_button(two_tenant_staff):
    html = two_tenant_staff.get(URL, {"tenant": "bravo"}).content.decode()
    submit = html[html.index('id="trunk-submit"') :]
    submit = submit[: submit.index("</div>")]
    assert "on <strong>Bravo Networks</strong>" in submit


def test_the_picker_switches_by_htmx_and_keeps_its_button_for_use_without_javascript(
    two_tenant_staff,
):
    html = two_tenant_staff.get(URL, {"tenant": "bravo"}).content.decode()
    assert 'hx-get="/trunks/new/" hx-trigger="change" hx-target="#trunk-create"' in html
    assert (
        '<button type="submit" class="button small" data-no-js-only>Switch tenant</button>' in html
    )
    fragment = two_tenant_staff.get(URL, {"tenant": "alpha"}, headers=HX).content.decode()
    assert fragment.lstrip().startswith('<div id="trunk-create"')
    assert "on <strong>Alpha Telecom</strong>" in fragment


def _alice(client):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(pk=client.session["_auth_user_id"])


def test_changing_tenant_reloads_both_selects_through_an_htmx_partial(two_tenant_staff):
    client = two_tenant_staff
    response = client.get(reverse("trunks:numbers") + "?tenant=bravo", headers=HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert html.lstrip().startswith('<div id="numbers-region"')
    assert '<input type="hidden" name="tenant" value="bravo">' in html
    assert "02 9999 0000 — Bravo HQ" in html and "0400 001 111" in html
    assert 'id="trunk-submit" class="actions" hx-swap-oob="true"' in html
    assert client.session["trunks.create.tenant"] == "bravo"


def test_a_tenant_the_user_does_not_belong_to_is_404(staff, tenant_b, crazytel):
    assert staff.get(URL + "?tenant=bravo").status_code == 404
    assert staff.get(reverse("trunks:numbers") + "?tenant=bravo", headers=HX).status_code == 404
    response = _post(staff, tenant="bravo")
    assert response.status_code == 404
    assert create_calls(crazytel) == []


def test_the_trunk_is_created_on_the_posted_tenant(two_tenant_staff, crazytel):
    client = two_tenant_staff
    crazytel.post("https://crazytel-b.test/api/v1/sip-trunks/", json=created("CT777777"))
    response = _post(
        client, tenant="bravo", caller_id_number="61299990000", sms_sender="61400001111"
    )
    assert "CT777777" in response.content.decode()
    record = AuditRecord.objects.get()
    assert record.tenant.slug == "bravo"
    [call] = [c for c in crazytel.calls if c.request.method == "POST"]
    assert call.request.headers["x-crazytel-api-key"] != API_KEY_A


# --- inactive or keyless tenants ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        ({"is_active": False}, "is deactivated"),
        ({"api_key_ciphertext": ""}, "has no Crazytel API key"),
    ],
)
def test_an_inactive_or_keyless_tenant_gets_an_explanation_instead_of_the_form(
    staff, keyed_a, crazytel, change, phrase
):
    token = token_from(staff.get(URL).content.decode())
    for name, value in change.items():
        setattr(keyed_a, name, value)
    keyed_a.save()
    crazytel.calls.reset()
    html = staff.get(URL).content.decode()
    assert phrase in html
    assert 'id="trunk-form"' not in html
    response = _post(staff, token=token)
    assert phrase in response.content.decode()
    assert "Nothing was sent to Crazytel" in response.content.decode()
    assert len(crazytel.calls) == 0
    assert AuditRecord.objects.count() == 0


# --- success ------------------------------------------------------------------------------------------


def test_staff_create_a_trunk_and_see_username_and_password_once(staff, crazytel, settings):
    settings.CRAZYTEL_SIP_REGISTRAR = "sip.crazytel.example"
    crazytel.post(TRUNKS_URL, json=created("CT123456"))
    token = token_from(staff.get(URL).content.decode())
    response = _post(staff, token=token)
    html = response.content.decode()
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert "Trunk CT123456 created" in html
    assert f'<code id="trunk-password">{CANARY}</code>' in html
    assert 'data-copy-target="trunk-password"' in html
    assert 'data-copy-target="trunk-username"' in html
    assert "sip.crazytel.example" in html
    assert "02 9876 5432" in html and "Reception phone" in html
    assert 'href="/trunks/new/"' in html and "Create another" in html
    assert 'hx-history="false"' in html
    # Reload (the browser re-posts the same form): the same trunk, the password gone, no new call.
    again = _post(staff, token=token)
    assert "CT123456" in again.content.decode()
    assert CANARY not in again.content.decode()
    assert len(create_calls(crazytel)) == 1
    _no_canary_anywhere()


def test_the_upstream_receives_exactly_the_documented_json(staff, crazytel):
    crazytel.post(TRUNKS_URL, json=created())
    _post(staff, hide_caller_id="on", softphone_sync_sms="on", description="  Desk 4  ")
    [call] = create_calls(crazytel)
    assert call.request.headers["x-crazytel-api-key"] == API_KEY_A
    assert sent_json(call) == {
        "password": CANARY,
        "caller_id_number": "61298765432",
        "enabled": True,
        "area_code": "02",
        "description": "Desk 4",
        "hide_caller_id": True,
        "sms_sender": "61412345678",
        "softphone_show_balance": True,
        "softphone_sync_sms": True,
    }


def test_unticked_boxes_and_empty_options_are_sent_as_false_and_left_out(staff, crazytel):
    crazytel.post(TRUNKS_URL, json=created())
    _post(
        staff,
        enabled=None,
        softphone_show_balance=None,
        sms_sender="",
        area_code="",
        description="",
    )
    body = sent_json(create_calls(crazytel)[0])
    assert body == {
        "password": CANARY,
        "caller_id_number": "61298765432",
        "enabled": False,
        "hide_caller_id": False,
        "softphone_show_balance": False,
        "softphone_sync_sms": False,
    }


def test_htmx_success_swaps_in_the_result_kept_out_of_history(staff, crazytel):
    crazytel.post(TRUNKS_URL, json=created("CT999001"))
    response = _post(staff, htmx=True)
    html = response.content.decode()
    assert "<html" not in html
    assert html.lstrip().startswith(
        '<div id="trunk-create" class="trunk-create" hx-history="false">'
    )
    assert 'aria-live="polite"' in html and "CT999001" in html
    assert "no-store" in response["Cache-Control"]


def test_managers_get_a_link_to_the_record_in_the_audit_log_when_it_exists(
    client, mallory, keyed_a, crazytel
):
    client.force_login(mallory)
    crazytel.post(TRUNKS_URL, json=created())
    html = _post(client).content.decode()
    record = AuditRecord.objects.get()
    try:
        audit_url = reverse("audit:detail", args=[record.pk])
    except Exception:
        audit_url = None
    if audit_url:
        assert f'href="{audit_url}"' in html and "View in audit log" in html
    assert f'href="/trunks/attempts/{record.uuid}/"' in html or audit_url


# --- every upstream outcome on the form ---------------------------------------------------------------


@pytest.mark.parametrize("fault", FAILURES, ids=str)
@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_each_upstream_fault_shows_its_message_on_the_form_with_the_values_kept(
    staff, crazytel, fault, htmx
):
    crazytel.post(TRUNKS_URL, **fault.reply)
    response = _post(staff, htmx=htmx)
    html = response.content.decode()
    assert response.status_code == 200
    assert fault.message in unescape(html)
    if fault.field:
        assert re.search(rf'name="{fault.field}"[^>]*aria-invalid="true"', html)
    assert 'id="trunk-form"' in html  # the form again, values kept
    assert '<option value="61298765432" selected>' in html
    assert 'value="Reception phone"' in html
    record = AuditRecord.objects.get()
    assert record.status == fault.status
    assert len(create_calls(crazytel)) == 1
    # A fresh one-time token: the spent one would only show this result again.
    assert record.submission_token not in html
    _no_canary_anywhere(response)


def test_a_422_shows_crazytels_words_beside_the_password_field(staff, crazytel):
    crazytel.post(
        TRUNKS_URL,
        status=422,
        json={
            "detail": [
                {"loc": ["body", "password"], "msg": "Password too weak", "type": "value_error"}
            ]
        },
    )
    html = _post(staff).content.decode()
    assert re.search(r'name="password"[^>]*aria-invalid="true"', html)
    assert re.search(r'<ul class="errorlist" id="id_password_error"><li>Password too weak', html)


@pytest.mark.parametrize(
    ("detail", "field"),
    [
        ("Caller ID number is not verified", "caller_id_number"),
        ("SMS sender is not verified", "sms_sender"),
    ],
)
def test_400_marks_the_number_crazytel_refused(staff, crazytel, detail, field):
    crazytel.post(TRUNKS_URL, status=400, json={"detail": detail})
    html = _post(staff).content.decode()
    assert re.search(rf'name="{field}"[^>]*aria-invalid="true"', html)
    assert f'id="id_{field}_error"' in html


def test_a_key_crazytel_rejects_marks_the_tenants_connection_failing(staff, keyed_a, crazytel):
    crazytel.post(TRUNKS_URL, status=401, json={"detail": "nope"})
    _post(staff)
    keyed_a.refresh_from_db()
    assert keyed_a.connection_ok is False


# --- unknown outcome, and trying again ---------------------------------------------------------------


def test_an_unknown_outcome_offers_try_again_only_with_confirmation_and_the_password(
    staff, crazytel
):
    crazytel.post(TRUNKS_URL, body=requests.ReadTimeout("timed out"))
    html = _post(staff).content.decode()
    unknown = AuditRecord.objects.get()
    assert unknown.status == AuditStatus.UNKNOWN
    assert f'name="retry_of" value="{unknown.uuid}"' in html
    assert "Try again anyway" in html
    assert 'name="confirm_retry"' in html
    token = token_from(html)

    # Without the confirmation: refused, nothing sent.
    response = _post(staff, token=token, retry_of=str(unknown.uuid))
    assert "Confirm you have checked the Crazytel account" in response.content.decode()
    assert len(create_calls(crazytel)) == 1
    # Without the password: refused, nothing sent.
    response = _post(
        staff, token=token, retry_of=str(unknown.uuid), confirm_retry="on", password=""
    )
    assert "Enter a password for the trunk" in response.content.decode()
    assert len(create_calls(crazytel)) == 1

    crazytel.replace(responses.POST, TRUNKS_URL, json=created("CT424242"))
    response = _post(staff, token=token, retry_of=str(unknown.uuid), confirm_retry="on")
    assert "CT424242" in response.content.decode()
    retry = AuditRecord.objects.exclude(pk=unknown.pk).get()
    assert retry.related_id == unknown.pk
    assert retry.status == AuditStatus.SUCCEEDED


def test_a_retry_cannot_point_at_an_attempt_that_was_not_unknown(staff, crazytel):
    crazytel.post(TRUNKS_URL, json=created())
    _post(staff)
    done = AuditRecord.objects.get()
    response = _post(staff, retry_of=str(done.uuid), confirm_retry="on")
    assert "not one of this tenant's unknown outcomes" in response.content.decode().replace(
        "&#x27;", "'"
    )
    assert len(create_calls(crazytel)) == 1


# --- validation before anything goes upstream --------------------------------------------------------

INVALID = [
    ({"caller_id_number": "61200000000"}, "caller_id_number", "Choose one of this account"),
    ({"caller_id_number": ""}, "caller_id_number", "Choose the caller ID number"),
    ({"sms_sender": "61298765432"}, "sms_sender", "must be an Australian mobile"),
    ({"sms_sender": "61499999999"}, "sms_sender", "verified mobile numbers"),
    (
        {"sms_sender": "", "softphone_sync_sms": "on"},
        "softphone_sync_sms",
        "SMS sync needs an SMS sender",
    ),
    ({"password": "short1A"}, "password", "At least 8 characters"),
    ({"password": "alllowercase1"}, "password", "upper-case"),
    ({"password": "Pass word123"}, "password", "no spaces"),
    ({"password": ""}, "password", "Enter a password"),
    ({"password": "Aa1" + "x" * 200}, "password", "at most 128"),
    ({"description": "line\nbreak"}, "description", "single line"),
    ({"description": "bidi\u202eoverride"}, "description", "invisible"),
    ({"description": "x" * 101}, "description", "at most 100"),
    ({"description": "nul\x00byte"}, "description", "Null characters"),
    ({"area_code": "09"}, "area_code", "area codes"),
    ({"area_code": "02; DROP"}, "area_code", "area codes"),
    ({"enabled": "maybe"}, "enabled", "unexpected value"),
    ({"hide_caller_id": "yes please"}, "hide_caller_id", "unexpected value"),
]


@pytest.mark.parametrize(("change", "field", "phrase"), INVALID)
def test_bad_input_is_refused_beside_its_field_and_nothing_goes_upstream(
    staff, crazytel, change, field, phrase
):
    response = _post(staff, **change)
    html = response.content.decode()
    assert response.status_code == 200
    assert phrase in html
    assert re.search(rf'id="id_{field}_error"', html), field
    assert re.search(rf'name="{field}"[^>]*aria-invalid="true"', html)
    assert "Nothing was sent to Crazytel" in html
    assert create_calls(crazytel) == []
    assert AuditRecord.objects.count() == 0
    assert CANARY not in html  # the password is never sent back


def test_a_duplicated_boolean_field_is_refused(staff, crazytel):
    token = token_from(staff.get(URL).content.decode())
    body = {**VALID, "submission_token": token, "enabled": ["on", "off"]}
    html = staff.post(URL, body).content.decode()
    assert "unexpected value" in html
    assert create_calls(crazytel) == []


def test_after_a_field_error_the_same_form_can_be_submitted_once_fixed(staff, crazytel):
    crazytel.post(TRUNKS_URL, json=created("CT100200"))
    token = token_from(staff.get(URL).content.decode())
    html = _post(staff, token=token, description="a\tb").content.decode()
    assert token_from(html) == token  # nothing recorded: the same rendering stays valid
    assert "CT100200" in _post(staff, token=token).content.decode()


@pytest.mark.parametrize("token", ["", "forged", "eyJ1IjoxfQ:bad:signature"])
def test_a_missing_or_forged_token_sends_nothing(staff, crazytel, token):
    html = _post(staff, token=token).content.decode()
    assert "expired or was changed" in html
    assert create_calls(crazytel) == []


def test_another_users_token_is_refused(staff, bob, crazytel):
    html = _post(staff, token=submission_token_issue(user=bob)).content.decode()
    assert "expired or was changed" in html
    assert create_calls(crazytel) == []


def test_an_expired_token_is_refused(staff, crazytel, monkeypatch):
    token = token_from(staff.get(URL).content.decode())
    monkeypatch.setattr("trunks.provisioning.tokens.SUBMISSION_TOKEN_MAX_AGE", -1)
    assert "expired or was changed" in _post(staff, token=token).content.decode()
    assert create_calls(crazytel) == []


# --- numbers: refresh, failures ------------------------------------------------------------------------


def test_refresh_numbers_asks_crazytel_again_and_keeps_the_choice(staff, crazytel):
    staff.get(URL)
    crazytel.replace(responses.GET, NUMBERS_URL, json=["61298765432", "61411112222"])
    response = staff.get(
        reverse("trunks:numbers")
        + "?tenant=alpha&refresh=1&caller_id_number=61298765432&sms_sender=61412345678",
        headers=HX,
    )
    html = response.content.decode()
    assert "0411 112 222" in html
    assert '<option value="61298765432" selected>' in html
    assert len([c for c in crazytel.calls if c.request.url == NUMBERS_URL]) == 2


def test_many_refreshes_share_one_real_call_per_tenant_within_the_interval(staff, crazytel):
    """70 refreshes in a few seconds (issue 16 spent 55 of the 60 calls a minute this way)."""
    staff.get(URL)  # the ordinary, cold-cache look
    crazytel.replace(responses.GET, NUMBERS_URL, json=["61298765432", "61411112222"])
    for _ in range(70):
        html = staff.get(reverse("trunks:numbers") + "?tenant=alpha&refresh=1", headers=HX)
        assert "0411 112 222" in html.content.decode()
    assert len([c for c in crazytel.calls if c.request.url == NUMBERS_URL]) == 2


def test_without_javascript_refresh_is_a_plain_link(staff, crazytel):
    response = staff.get(reverse("trunks:numbers") + "?tenant=alpha&refresh=1")
    assert response.status_code == 302
    assert response["Location"].startswith(URL)


@pytest.mark.parametrize(
    ("reply", "phrase"),
    [
        (dict(body=requests.ConnectTimeout("down")), "could not be reached"),
        (dict(status=401, json={"detail": "bad"}), "an admin must replace it"),
    ],
)
def test_numbers_failure_is_said_where_the_selects_would_be_with_a_retry(
    staff, crazytel, reply, phrase
):
    crazytel.replace(responses.GET, NUMBERS_URL, **reply)
    html = staff.get(URL).content.decode()
    assert phrase in html
    assert "Try again" in html and "refresh=1" in html
    assert 'name="caller_id_number"' not in html
    assert re.search(r'<button type="submit" class="button primary" disabled', html)
    # And a POST while the numbers cannot be checked sends nothing.
    html = _post(staff, token=token_from(html)).content.decode()
    assert "numbers could not be checked" in html
    assert create_calls(crazytel) == []


# --- double submission ------------------------------------------------------------------------------------


def test_a_double_click_makes_one_trunk_and_both_responses_show_it(staff, crazytel):
    crazytel.post(TRUNKS_URL, json=created("CT010203"))
    token = token_from(staff.get(URL).content.decode())
    first = _post(staff, token=token, htmx=True).content.decode()
    second = _post(staff, token=token, htmx=True).content.decode()
    assert "CT010203" in first and "CT010203" in second
    assert "already" in second or "earlier submission" in second
    assert len(create_calls(crazytel)) == 1
    assert AuditRecord.objects.count() == 1


def test_a_second_post_while_the_first_is_pending_says_still_in_progress(staff, alice, crazytel):
    token = token_from(staff.get(URL).content.decode())
    seen = {}

    def slow(request):
        seen["second"] = _post(staff, token=token).content.decode()
        return (200, {}, '{"username": "CT555555"}')

    crazytel.add_callback(responses.POST, TRUNKS_URL, callback=slow)
    _post(staff, token=token)
    assert "Still in progress" in seen["second"]
    record = AuditRecord.objects.get()
    assert f"/trunks/attempts/{record.uuid}/" in seen["second"]
    assert len(create_calls(crazytel)) == 1
    # The attempt page shows the final result once there is one.
    html = staff.get(f"/trunks/attempts/{record.uuid}/").content.decode()
    assert "CT555555" in html and CANARY not in html
    # The pending panel polls that page through htmx; the final answer stops the polling.
    assert 'hx-trigger="every 2s"' in seen["second"]
    fragment = staff.get(f"/trunks/attempts/{record.uuid}/", headers=HX).content.decode()
    assert fragment.lstrip().startswith('<section id="trunk-result"')
    assert "CT555555" in fragment and "every 2s" not in fragment


def test_the_attempt_page_is_only_for_the_person_who_made_it(staff, client, bob, crazytel):
    crazytel.post(TRUNKS_URL, json=created())
    _post(staff)
    record = AuditRecord.objects.get()
    client.force_login(bob)
    assert client.get(f"/trunks/attempts/{record.uuid}/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_posts_of_one_form_make_exactly_one_upstream_call(
    alice, keyed_a, crazytel
):
    """On PostgreSQL and on SQLite (a file: each thread on its own connection, BEGIN IMMEDIATE)."""
    from django.db import connections
    from django.test import Client

    client = Client()
    client.force_login(alice)
    token = token_from(client.get(URL).content.decode())
    barrier = threading.Barrier(2)
    gate = threading.Event()
    results = []

    def slow(request):
        gate.wait(5)  # hold the first call open until the other POST has been answered
        return (200, {}, '{"username": "CT868686"}')

    crazytel.add_callback(responses.POST, TRUNKS_URL, callback=slow)

    def submit():
        own = Client()
        own.force_login(alice)
        try:
            barrier.wait(5)
            response = own.post(URL, {**VALID, "submission_token": token})
            results.append(response.content.decode())
        finally:
            gate.set()
            connections.close_all()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 2
    assert len(create_calls(crazytel)) == 1
    assert AuditRecord.objects.count() == 1
    assert sum("CT868686" in r for r in results) >= 1
    assert any("Still in progress" in r or "earlier submission" in r for r in results)


# --- the Generate button's endpoint -------------------------------------------------------------------


def test_generate_returns_a_fresh_strong_password_never_cached(staff):
    response = staff.get(reverse("trunks:password"))
    assert "no-store" in response["Cache-Control"]
    password = response.json()["password"]
    assert len(password) >= 16 and password_failures(password) == []
    assert staff.get(reverse("trunks:password")).json()["password"] != password


def test_generating_a_password_is_404_for_someone_without_a_tenant(client, charlie):
    client.force_login(charlie)
    assert client.get(reverse("trunks:password")).status_code == 404


def test_read_only_endpoints_refuse_post_and_the_form_refuses_put_with_405(staff):
    assert staff.post(reverse("trunks:password")).status_code == 405
    assert staff.post(reverse("trunks:numbers")).status_code == 405
    assert staff.put(URL).status_code == 405


def test_the_form_warns_of_recent_unknown_outcomes_until_followed_up(
    staff, crazytel, django_capture_on_commit_callbacks
):
    staff.get(URL)  # the (empty) list of unknown outcomes is cached now
    crazytel.post(TRUNKS_URL, body=requests.ReadTimeout("timed out"))
    # The cached list is dropped when an attempt's final record commits (the test's own
    # transaction never does: its commit callbacks are run here).
    with django_capture_on_commit_callbacks(execute=True):
        _post(staff, description="Front desk")
    html = staff.get(URL).content.decode()
    assert "Check Crazytel first" in html
    assert "02 9876 5432 “Front desk”" in html and "by alice" in html
    # A retry follows it up: the warning goes.
    unknown = AuditRecord.objects.get()
    crazytel.replace(responses.POST, TRUNKS_URL, json=created())
    with django_capture_on_commit_callbacks(execute=True):
        _post(staff, retry_of=str(unknown.uuid), confirm_retry="on")
    assert "Check Crazytel first" not in staff.get(URL).content.decode()


def test_a_crash_report_never_shows_the_password(staff, crazytel):
    """A bug mid-call: the attempt turns unknown, and Django's error report hides the password."""
    import sys

    from django.core.signals import got_request_exception
    from django.views.debug import ExceptionReporter

    crazytel.post(TRUNKS_URL, body=RuntimeError("a bug in the portal"))
    reports = []

    def capture(sender, request, **kwargs):
        reporter = ExceptionReporter(request, *sys.exc_info())
        reports.append(reporter.get_traceback_html() + reporter.get_traceback_text())

    got_request_exception.connect(capture)
    staff.raise_request_exception = False
    try:
        response = _post(staff)
    finally:
        got_request_exception.disconnect(capture)
    assert response.status_code == 500
    assert reports and "a bug in the portal" in reports[0]
    assert CANARY not in reports[0]
    assert AuditRecord.objects.get().status == AuditStatus.UNKNOWN


def test_a_portal_administrator_before_any_tenant_is_told_to_create_one(client, root):
    client.force_login(root)
    response = client.get(URL)
    assert response.status_code == 200
    assert "There is no tenant yet" in response.content.decode()


def test_browsers_are_told_not_to_fill_in_the_persons_own_password(staff, crazytel):
    html = staff.get(URL).content.decode()
    assert re.search(
        r'<input type="password" name="password"[^>]*autocomplete="new-password"', html
    )


def test_a_tenant_whose_key_was_rejected_is_flagged_to_staff_on_the_form(staff, keyed_a, crazytel):
    from trunks.tenants.services import tenant_connection_mark_failed

    tenant_connection_mark_failed(tenant=keyed_a, message="Crazytel rejected the key (401).")
    staff.get(URL)  # the numbers are cached from before the key went bad
    html = staff.get(URL).content.decode()
    assert "Crazytel rejected this tenant's key recently" in html


# --- what the form says after an attempt --------------------------------------------------


def test_after_a_429_the_outcome_carries_the_wait_for_the_countdown(staff, crazytel):
    crazytel.post(TRUNKS_URL, status=429, json={"detail": "slow"}, headers={"Retry-After": "30"})
    html = _post(staff).content.decode()
    assert 'data-retry-after="30"' in html
    assert "data-retry-countdown" in html
    assert AuditRecord.objects.get().status == AuditStatus.FAILED  # Crazytel answered it


def test_an_attempt_the_portals_own_limit_held_back_is_recorded_as_not_sent(
    staff, crazytel, settings
):
    settings.CRAZYTEL_RATE_LIMIT_PER_MINUTE = 1
    settings.CRAZYTEL_RATE_LIMIT_MAX_WAIT = 0
    crazytel.post(TRUNKS_URL, json=created("CT123456"))
    _post(staff)  # the one call of this minute (the numbers came from the cache or the GET)
    html = _post(staff).content.decode()
    statuses = list(AuditRecord.objects.order_by("id").values_list("status", flat=True))
    assert statuses[-1] == AuditStatus.NOT_SENT, statuses
    assert "Not sent: the portal held it back" in html
    assert "data-retry-after=" in html
    assert len([c for c in crazytel.calls if c.request.method == "POST"]) <= 1


def test_the_success_page_shows_how_to_register_the_trunk_with_copy_all(staff, crazytel, settings):
    settings.CRAZYTEL_SIP_REGISTRAR = "sip.crazytel.example"
    settings.CRAZYTEL_SIP_PORT = 5061
    settings.CRAZYTEL_SIP_TRANSPORT = "TLS"
    crazytel.post(TRUNKS_URL, json=created("CT123456"))
    html = _post(staff).content.decode()
    assert "Register the trunk" in html
    for value in ("sip.crazytel.example", "5061", "TLS"):
        assert f">{value}</code>" in html
    assert 'data-copy-all="Username=trunk-username;Password=trunk-password;' in html
    assert html.count(CANARY) == 1


def test_the_sandbox_demo_has_a_stand_in_registrar():
    import subprocess
    import sys

    # The settings module alone (no django.setup(): the apps play no part in the value).
    out = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; "
         "print(settings.CRAZYTEL_SIP_REGISTRAR)"],
        env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "portal.settings",
             "SANDBOX_ENABLED": "true", "CRAZYTEL_SIP_REGISTRAR": ""},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.strip() == "sip.sandbox.test"


def test_a_persons_own_attempt_page_neither_says_already_submitted_nor_links_to_itself(
    staff, crazytel
):
    crazytel.post(TRUNKS_URL, json=created("CT123456"))
    _post(staff)
    record = AuditRecord.objects.get()
    url = f"/trunks/attempts/{record.uuid}/"
    html = staff.get(url).content.decode()
    assert "Trunk CT123456 created" in html
    assert "already submitted" not in html and "earlier submission" not in html
    assert f'href="{url}"' not in html


# --- rendering runs no queries --------------------------------------------------------------------


@pytest.fixture
def render_queries(monkeypatch):
    """The queries each TemplateResponse's rendering ran (the view's own queries are not counted)."""
    seen: list[list[str]] = []
    real = SimpleTemplateResponse.render

    def render(self):
        with CaptureQueriesContext(connection) as queries:
            rendered = real(self)
        seen.append([q["sql"] for q in queries.captured_queries])
        return rendered

    monkeypatch.setattr(SimpleTemplateResponse, "render", render)
    return seen


def _unknown_then_another(staff, crazytel):
    """An earlier unknown outcome (listed on the form), then a fresh failure on the form."""
    crazytel.post(TRUNKS_URL, body=requests.ReadTimeout("timed out"))
    _post(staff)
    return _post(staff, password="short")


RENDERINGS = {
    "form-page": lambda staff, crazytel: staff.get(URL),
    "form-partial-htmx": lambda staff, crazytel: staff.get(URL, headers=HX),
    "form-with-field-errors": lambda staff, crazytel: _post(staff, password="short"),
    "form-after-unknown-outcome": _unknown_then_another,
    "success-page": lambda staff, crazytel: (
        crazytel.post(TRUNKS_URL, json=created()),
        _post(staff),
    )[1],
    "success-partial-htmx": lambda staff, crazytel: (
        crazytel.post(TRUNKS_URL, json=created()),
        _post(staff, htmx=True),
    )[1],
}


@pytest.mark.parametrize("rendering", list(RENDERINGS))
def test_rendering_the_trunk_page_runs_no_queries(staff, crazytel, render_queries, rendering):
    response = RENDERINGS[rendering](staff, crazytel)
    assert response.status_code == 200
    assert render_queries, "the trunk page is a TemplateResponse, rendered after the view"
    assert render_queries[-1] == [], "\n".join(render_queries[-1])


# --- what a form view and a create cost (issue 17) ------------------------------------------------


def _statements(fn) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        fn()
    control = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
    return [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(control)]


def test_the_form_page_reads_the_tenants_and_the_menus_roles_in_one_query(staff, crazytel):
    staff.get(URL)  # the numbers (and the recent unknown outcomes) are read once, then shared
    sql = _statements(lambda: staff.get(URL))
    assert sum("trunks_membership" in s for s in sql) == 1
    assert not any('FROM "trunks_tenant"' in s for s in sql)
    assert len(sql) <= 5, sql


# PostgreSQL finishes an attempt and adds its Trunk in one statement (a data-modifying WITH whose
# INSERT runs only if the UPDATE applied); SQLite has no such statement: an UPDATE, then the INSERT.
TOGETHER = connection.vendor == "postgresql"
FINISH = "WITH" if TOGETHER else "UPDATE"


def _finishing_update(statement: str) -> str:
    """The finishing UPDATE of an attempt, alone or inside the statement that also adds the Trunk."""
    if TOGETHER:
        assert statement.startswith('WITH finished AS (UPDATE "trunks_auditrecord"'), statement
        update, insert = statement.split("), added AS (", 1)
        assert insert.startswith('INSERT INTO "trunks_trunk"'), statement
        assert "WHERE EXISTS (SELECT 1 FROM finished) ON CONFLICT DO NOTHING" in insert
        return update
    return statement


def test_a_create_writes_the_attempt_once_and_finishes_it_with_one_update(staff, crazytel):
    crazytel.post(TRUNKS_URL, json=created("CT246810"))
    token = token_from(staff.get(URL).content.decode())
    sql = [s for s in _statements(lambda: _post(staff, token=token)) if "ratelimit" not in s]
    audit = [s for s in sql if "trunks_auditrecord" in s]
    assert [s.split()[0] for s in audit] == ["INSERT", "SELECT", FINISH], audit
    # Finished only while still pending (exactly once), without locking rows first.
    assert '"status" = ' in _finishing_update(audit[2]).split("WHERE", 1)[1]
    assert not any("FOR UPDATE" in s for s in sql)
    trunk = [s for s in sql if "trunks_trunk" in s]
    assert trunk == [audit[2]] if TOGETHER else [s.split()[0] for s in trunk] == ["INSERT"]
    assert sum("trunks_membership" in s for s in sql) == 1
    record = AuditRecord.objects.get()
    assert (record.status, record.trunk_username) == ("succeeded", "CT246810")


def test_a_create_after_another_finishes_on_the_chain_head_its_insert_saw_without_reading_it(
    staff, crazytel
):
    from trunks.audit.chain import audit_chain_verify

    crazytel.post(TRUNKS_URL, json=created("CT135791"))
    crazytel.post(TRUNKS_URL, json=created("CT246802"))
    _post(staff)
    first = AuditRecord.objects.get()
    token = token_from(staff.get(URL).content.decode())
    sql = [s for s in _statements(lambda: _post(staff, token=token)) if "ratelimit" not in s]
    audit = [s for s in sql if "trunks_auditrecord" in s]
    # The pending INSERT returns the chain's head; the finish guesses it without reading it again.
    assert [s.split()[0] for s in audit] == ["INSERT", FINISH], audit
    # Applied only while pending and only after that head, which must be in the table.
    where = _finishing_update(audit[1]).split("WHERE", 1)[1]
    assert '"status" = ' in where and "EXISTS" in where
    # The tenants (the password-change flag is in the session); the INSERT, the UPDATE; the Trunk
    # record (in the UPDATE's statement on PostgreSQL). Besides them only the session and the
    # user, which come from Redis when the cache is.
    frame = [s for s in sql if "django_session" in s or '"auth_user"' in s]
    assert len(sql) - len(frame) == (3 if TOGETHER else 4) and len(frame) <= 2, sql
    second = AuditRecord.objects.exclude(pk=first.pk).get()
    assert (second.chain_seq, second.prev_hash) == (first.chain_seq + 1, first.record_hash)
    assert audit_chain_verify().ok
