"""Bad input, property-based: every form and htmx endpoint of the URL conf gets arbitrary values —
wrong types, huge and empty strings, unicode, control characters and NUL bytes, missing and
duplicated fields, another tenant's slugs and ids — and answers a 4xx or the form with its errors:
never a 500, never a call to Crazytel for invalid input. Request bodies are size-limited.

Hypothesis runs inside one test (and its database transaction) per endpoint: the examples share
the fixtures' people and tenants, so what one example changes (a renamed tenant, an added member)
the next one starts from, as a series of real requests would.
"""

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.trunk_fixtures import NUMBERS, token_from
from trunks.models import Membership

pytestmark = pytest.mark.usefixtures("fast_password_hasher")

# How many examples: the Hypothesis profile (tests/conftest.py: 20 in `make test`).
EXAMPLES = settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\r\n",
    "\t",
    "\u202eevil",  # right-to-left override
    "\ufeff",
    "😀" * 10,
    "x" * 5000,
    "0",
    "-1",
    "1e309",
    "NaN",
    "true",
    "on",
    "null",
    "[]",
    '{"a": 1}',
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "../../etc/passwd",
    "%00",
    "CT123456",
    "61298765432x",
    "+61 2 9876 5432",
    "0412 345 678",
    "ZZZ",
    "bravo",  # another tenant's slug
    "99999999999999999999999",
]
value = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=40),  # any code point but surrogates: control characters and NULs included
    st.integers().map(str),
    st.binary(max_size=20).map(lambda b: b.decode("latin-1")),
)
# A field sent once, or several times (a duplicated field).
field_value = st.one_of(value, st.lists(value, min_size=2, max_size=3))


def form_data(*fields: str):
    """Any subset of `fields` (missing ones left out) plus maybe a stray field, with bad values."""
    return st.fixed_dictionaries(
        {},
        optional={
            **{name: field_value for name in fields},
            "unexpected": field_value,
            "csrfmiddlewaretoken": value,
        },
    )


def _ok(response, *, form_errors_on_200: bool = False) -> None:
    assert response.status_code < 500, response.content[:2000]
    assert response.status_code in {200, 302, 400, 403, 404, 405, 409, 429}, response.status_code
    if form_errors_on_200 and response.status_code == 200:
        html = response.content.decode()
        assert 'class="errorlist' in html or 'role="alert"' in html, html[:3000]


def _no_create(mock) -> None:
    posts = [c.request.url for c in mock.calls if c.request.method != "GET"]
    assert posts == [], "invalid input reached Crazytel"


@pytest.fixture
def staff(alice, keyed_a, crazytel):
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def admin(adam, keyed_a, crazytel, tenant_b, bob, reauth_fresh):
    client = Client()
    client.force_login(adam)
    reauth_fresh(client)
    return client


@pytest.fixture
def manager(mallory, tenant_a, tenant_b, alice, bob):
    client = Client()
    client.force_login(mallory)
    return client


# --- Trunk creation and its partials -------------------------------------------------------------

TRUNK_FIELDS = (
    "tenant",
    "submission_token",
    "caller_id_number",
    "sms_sender",
    "password",
    "description",
    "area_code",
    "enabled",
    "hide_caller_id",
    "softphone_show_balance",
    "softphone_sync_sms",
    "retry_of",
)


def test_the_trunk_form_refuses_any_bad_post_without_calling_crazytel(staff, crazytel):
    # A real token from a rendered form, so the fields themselves are what is judged.
    token = token_from(staff.get("/trunks/new/").content.decode())

    @EXAMPLES
    @given(data=form_data(*TRUNK_FIELDS), real_token=st.booleans(), htmx=st.booleans())
    def check(data, real_token, htmx):
        if real_token:
            data = {**data, "submission_token": token}
        headers = {"HX-Request": "true"} if htmx else {}
        _ok(staff.post("/trunks/new/", data, headers=headers), form_errors_on_200=True)

    check()
    _no_create(crazytel)


def test_the_trunk_form_and_numbers_partial_take_any_query(staff, crazytel):
    @EXAMPLES
    @given(query=form_data("tenant", "refresh", "caller_id_number", "sms_sender"))
    def check(query):
        _ok(staff.get("/trunks/new/", query))
        _ok(staff.get("/trunks/new/numbers/", query, headers={"HX-Request": "true"}))
        _ok(staff.get("/trunks/new/numbers/", query))

    check()
    _no_create(crazytel)


def test_another_tenants_slug_on_the_trunk_form_is_404(staff, bob):
    assert staff.get("/trunks/new/", {"tenant": "bravo"}).status_code == 404
    assert staff.post("/trunks/new/", {"tenant": "bravo"}).status_code == 404


@given(uuid=st.uuids(), htmx=st.booleans())
@EXAMPLES
def test_an_unknown_attempt_is_404(staff, uuid, htmx):
    headers = {"HX-Request": "true"} if htmx else {}
    assert staff.get(f"/trunks/attempts/{uuid}/", headers=headers).status_code == 404


# --- Tenant pages ---------------------------------------------------------------------------------


def _member_ids():
    return [*Membership.objects.values_list("pk", flat=True), 0, 987654321]


def test_tenant_pages_refuse_any_bad_post(admin, tenant_a, crazytel):
    @EXAMPLES
    @given(
        which=st.sampled_from(["edit", "active", "key", "test", "members", "role", "remove"]),
        slug_kind=st.sampled_from(["own", "own", "own", "other", "missing"]),
        pick=st.integers(min_value=0, max_value=1000),
        data=form_data(
            "name",
            "slug",
            "base_url",
            "is_active",
            "api_key",
            "confirm_replace",
            "username",
            "role",
            "create_user",
            "password",
            "confirm",
        ),
        htmx=st.booleans(),
    )
    def check(which, slug_kind, pick, data, htmx):
        tenant_a.refresh_from_db()
        slug = {"own": tenant_a.slug, "other": "bravo", "missing": "no-such-tenant"}[slug_kind]
        ids = _member_ids()
        pk = ids[pick % len(ids)]
        url = {
            "edit": reverse("tenants:edit", args=[slug]),
            "active": reverse("tenants:set_active", args=[slug]),
            "key": reverse("tenants:key", args=[slug]),
            "test": reverse("tenants:test", args=[slug]),
            "members": reverse("tenants:member_add", args=[slug]),
            "role": reverse("tenants:member_role", args=[slug, pk]),
            "remove": reverse("tenants:member_remove", args=[slug, pk]),
        }[which]
        headers = {"HX-Request": "true"} if htmx else {}
        response = admin.post(url, data, headers=headers)
        _ok(response)
        if slug_kind != "own":
            assert response.status_code == 404

    check()
    # Only the connection test calls Crazytel (its balance): nothing else, and never a create.
    _no_create(crazytel)


@given(data=form_data("name", "slug", "base_url", "is_active"), htmx=st.booleans())
@EXAMPLES
def test_creating_a_tenant_refuses_any_bad_post(client, root, data, htmx):
    client.force_login(root)
    headers = {"HX-Request": "true"} if htmx else {}
    _ok(client.post(reverse("tenants:create"), data, headers=headers))


# --- Audit log: filters, exports, resolving -----------------------------------------------------

AUDIT_FILTERS = (
    "tenant",
    "actor",
    "status",
    "kind",
    "date_from",
    "date_to",
    "q",
    "sort",
    "after",
    "before",
)


def test_audit_filters_and_exports_take_any_query(manager):
    @EXAMPLES
    @given(query=form_data(*AUDIT_FILTERS), htmx=st.booleans())
    def check(query, htmx):
        headers = {"HX-Request": "true"} if htmx else {}
        _ok(manager.get(reverse("audit:list"), query, headers=headers))
        for name in ("audit:export-csv", "audit:export-jsonl"):
            response = manager.get(reverse(name), query)
            _ok(response)
            if response.status_code == 200:
                b"".join(response.streaming_content)  # the whole export streams without error

    check()


def _date_fields() -> list[str]:
    """Every date field of the audit filters (a new one is covered without editing this test)."""
    import django_filters

    from trunks.audit.filters import AuditRecordFilter

    return [
        name
        for name, f in AuditRecordFilter.base_filters.items()
        if isinstance(f, django_filters.DateFilter)
    ]


def test_every_audit_date_field_takes_any_date_of_the_calendar(manager):
    """Any day from 0001-01-01 to 9999-12-31 in any date field, on the list, the chart and the
    exports: a page or a clear message, never a 500 (the edges overflowed date arithmetic)."""
    fields = _date_fields()
    assert {"date_from", "date_to"} <= set(fields)
    urls = [
        reverse(n) for n in ("audit:list", "audit:chart", "audit:export-csv", "audit:export-jsonl")
    ]

    @EXAMPLES
    @given(
        days=st.fixed_dictionaries({}, optional={f: st.dates() for f in fields}),
        htmx=st.booleans(),
    )
    def check(days, htmx):
        query = {name: day.isoformat() for name, day in days.items()}
        headers = {"HX-Request": "true"} if htmx else {}
        for url in urls:
            response = manager.get(url, query, headers=headers)
            _ok(response)
            if response.status_code == 200 and response.streaming:
                b"".join(response.streaming_content)

    # The edges, always, besides what Hypothesis draws.
    for edge in ("0001-01-01", "9999-12-31"):
        for name in fields:
            for url in urls:
                response = manager.get(url, {name: edge})
                _ok(response)
                if response.streaming:
                    b"".join(response.streaming_content)
    check()


def test_resolving_refuses_any_bad_post(manager, tenant_a, tenant_b, alice, bob):
    from tests.factories import audit_attempt

    own = audit_attempt(tenant=tenant_a, actor=alice, status="unknown")
    other = audit_attempt(tenant=tenant_b, actor=bob, status="unknown")

    @EXAMPLES
    @given(data=form_data("outcome", "username", "note"), htmx=st.booleans())
    def check(data, htmx):
        headers = {"HX-Request": "true"} if htmx else {}
        _ok(manager.post(reverse("audit:resolve", args=[own.pk]), data, headers=headers))
        response = manager.post(reverse("audit:resolve", args=[other.pk]), data, headers=headers)
        assert response.status_code == 404

    check()


# --- Login and re-authentication -------------------------------------------------------------------


@given(data=form_data("username", "password", "next"))
@EXAMPLES
def test_login_refuses_any_bad_post(db, data):
    _ok(Client().post(reverse("login"), data), form_errors_on_200=True)


def test_reauth_refuses_any_bad_post(alice):
    client = Client()
    client.force_login(alice)

    @EXAMPLES
    @given(data=form_data("password", "next"), htmx=st.booleans())
    def check(data, htmx):
        headers = {"HX-Request": "true"} if htmx else {}
        response = client.post(reverse("reauth"), data, headers=headers)
        assert response.status_code < 500
        if response.status_code == 302:
            # Only a relative, same-site address is ever followed.
            assert response["Location"].startswith("/") and not response["Location"].startswith(
                "//"
            )

    check()


# --- Size limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"description": "x" * (70 * 1024)},  # over DATA_UPLOAD_MAX_MEMORY_SIZE (64 KiB)
        {f"f{i}": "1" for i in range(300)},  # over DATA_UPLOAD_MAX_NUMBER_FIELDS (200)
    ],
    ids=["too-large", "too-many-fields"],
)
def test_an_oversized_body_is_400_and_reaches_nothing(staff, crazytel, settings, body):
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE <= 64 * 1024
    for headers in ({}, {"HX-Request": "true"}):
        response = staff.post("/trunks/new/", body, headers=headers)
        assert response.status_code == 400
    _no_create(crazytel)


def test_a_huge_body_to_the_login_is_400(db):
    assert Client().post(reverse("login"), {"username": "u" * (70 * 1024)}).status_code == 400


def test_the_numbers_fixture_is_what_the_form_offers(staff):
    # Guard for the properties above: the form renders with the mocked account's numbers.
    html = staff.get("/trunks/new/").content.decode()
    assert all(n["number"] in html for n in NUMBERS)
