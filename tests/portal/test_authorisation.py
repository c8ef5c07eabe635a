"""Who may open what: every role x every page x own and other tenant, and nothing leaks.

To add a page (e.g. /trunks/new/ or /audit/), append a `Page` to PAGES: its path may use {slug}
(the target tenant) and {member} (a membership of the target tenant); `access` says who may open it:
  - tenant_role(Role.X): tenant-scoped; the actor needs role X (or higher) in the target tenant,
    anyone else gets 404 (not 403: no existence leak);
  - any_role(Role.X): not tenant-scoped; the actor needs role X in some tenant, anyone else 403;
  - SUPERUSER: portal administrators only, anyone else 403.
Anonymous visitors are always sent to the login page. For POST pages give `data` that is harmless
(an empty or invalid form): a refused request must change nothing, and that is checked too.
"""

import secrets
from dataclasses import dataclass, field

import pytest
import responses
from django.conf import settings
from django.db import connection

from tests.factories import MembershipFactory, UserFactory
from trunks.models import AuditRecord, Membership, Role, Tenant
from trunks.tenants import services

# New each run: the rate limiter keeps per-key budgets in the shared cache (Redis in CI).
API_KEY_A = f"alpha-secret-key-{secrets.token_hex(6)}"
API_KEY_B = f"bravo-secret-key-{secrets.token_hex(6)}"


@dataclass(frozen=True)
class Access:
    kind: str  # "tenant", "any" or "superuser"
    role: Role | None = None


def tenant_role(role: Role) -> Access:
    return Access("tenant", role)


def any_role(role: Role) -> Access:
    return Access("any", role)


SUPERUSER = Access("superuser")


@dataclass(frozen=True)
class Page:
    name: str
    method: str
    path: str
    access: Access
    data: dict = field(default_factory=dict)
    htmx: bool = False


PAGES = [
    Page("tenant-list", "get", "/tenants/", any_role(Role.ADMIN)),
    Page("tenant-create-form", "get", "/tenants/new/", SUPERUSER),
    Page("tenant-create", "post", "/tenants/new/", SUPERUSER, data={"name": ""}),
    Page("tenant-detail", "get", "/tenants/{slug}/", tenant_role(Role.ADMIN)),
    Page("tenant-edit-form", "get", "/tenants/{slug}/edit/", tenant_role(Role.ADMIN)),
    Page("tenant-edit", "post", "/tenants/{slug}/edit/", tenant_role(Role.ADMIN), data={}),
    Page("tenant-set-active", "post", "/tenants/{slug}/active/", tenant_role(Role.ADMIN)),
    Page("tenant-key-form", "get", "/tenants/{slug}/key/", tenant_role(Role.ADMIN)),
    Page("tenant-key", "post", "/tenants/{slug}/key/", tenant_role(Role.ADMIN), data={}),
    Page("tenant-key-htmx", "post", "/tenants/{slug}/key/", tenant_role(Role.ADMIN), htmx=True),
    Page("tenant-test", "post", "/tenants/{slug}/test/", tenant_role(Role.ADMIN)),
    Page("tenant-test-htmx", "post", "/tenants/{slug}/test/", tenant_role(Role.ADMIN), htmx=True),
    Page("member-add", "post", "/tenants/{slug}/members/", tenant_role(Role.ADMIN), data={}),
    Page("member-add-htmx", "post", "/tenants/{slug}/members/", tenant_role(Role.ADMIN), htmx=True),
    Page(
        "member-role",
        "post",
        "/tenants/{slug}/members/{member}/role/",
        tenant_role(Role.ADMIN),
        data={"role": "nonsense"},
    ),
    Page(
        "member-remove-form",
        "get",
        "/tenants/{slug}/members/{member}/remove/",
        tenant_role(Role.ADMIN),
    ),
    Page(
        "member-remove",
        "post",
        "/tenants/{slug}/members/{member}/remove/",
        tenant_role(Role.ADMIN),
        data={},
    ),
]

ACTORS = ["anonymous", "alice", "mallory", "adam", "bob", "charlie", "root"]


# Hundreds of users are made here; the real hasher would make this matrix crawl.
pytestmark = pytest.mark.usefixtures("fast_password_hasher")


@pytest.fixture
def world(tenant_a, tenant_b, alice, mallory, adam, bob, charlie, root):
    """Two tenants with keys and members of every role, and a live-looking Crazytel."""
    # Tenant B gets its own admin and manager so every role exists on both sides.
    MembershipFactory(user=UserFactory(username="bella"), tenant=tenant_b, role=Role.ADMIN)
    MembershipFactory(user=UserFactory(username="boris"), tenant=tenant_b, role=Role.MANAGER)
    services.tenant_credential_set(actor=root, tenant=tenant_a, api_key=API_KEY_A)
    services.tenant_credential_set(actor=root, tenant=tenant_b, api_key=API_KEY_B)
    users = {
        "alice": alice,
        "mallory": mallory,
        "adam": adam,
        "bob": bob,
        "charlie": charlie,
        "root": root,
    }
    tenants = {"own": tenant_a, "other": tenant_b}
    return users, tenants


@pytest.fixture
def crazytel():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(
            f"{settings.CRAZYTEL_API_BASE_URL}/balance/",
            json={"account_code": "0001234", "balance": 12.5},
        )
        yield mock


def _expected(page: Page, actor: str, user, tenant: Tenant) -> str:
    """'login', 'ok', 'forbidden' or 'not_found'."""
    if user is None:
        return "login"
    if page.access.kind == "superuser":
        return "ok" if user.is_superuser else "forbidden"
    if page.access.kind == "any":
        if user.is_superuser:
            return "ok"
        roles = Membership.objects.filter(user=user).values_list("role", flat=True)
        best = Role.best(roles)
        return "ok" if best is not None and best.includes(page.access.role) else "forbidden"
    if user.is_superuser:
        return "ok"
    membership = Membership.objects.filter(user=user, tenant=tenant).first()
    if membership and Role(membership.role).includes(page.access.role):
        return "ok"
    return "not_found"


def _snapshot():
    """Everything a refused request must leave alone."""
    return (
        list(Tenant.objects.order_by("pk").values()),
        list(Membership.objects.order_by("pk").values()),
        AuditRecord.objects.count(),
    )


def _path(page: Page, tenant: Tenant) -> str:
    member = Membership.objects.filter(tenant=tenant).order_by("pk").first()
    return page.path.format(slug=tenant.slug, member=member.pk if member else 0)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_each_role_sees_only_what_it_may(client, world, crazytel, subtests, page):
    """Every actor against the page, on their own tenant and on another: one world per page (the
    requests the matrix sends change nothing an allowed one could not: their forms are empty)."""
    users, tenants = world
    for actor in ACTORS:
        # One sign-in per actor for both targets (a refused request leaves the session alone).
        client.logout()
        if (user := users.get(actor)) is not None:
            client.force_login(user)
        for target in ("own", "other"):
            with subtests.test(actor=actor, target=target):
                _check_access(client, user, tenants[target], page, actor)


def _check_access(client, user, tenant: Tenant, page: Page, actor: str) -> None:
    expected = _expected(page, actor, user, tenant)
    before = _snapshot()

    headers = {"HX-Request": "true"} if page.htmx else {}
    send = getattr(client, page.method)
    path = _path(page, tenant)
    if page.method == "post":
        response = send(path, page.data, headers=headers)
    else:
        response = send(path, headers=headers)

    if expected == "login":
        if page.htmx:
            # htmx is sent to the login page as a whole-page navigation.
            assert response.status_code == 200
            assert response["HX-Redirect"].startswith("/accounts/login/")
        else:
            assert response.status_code == 302
            assert response["Location"].startswith("/accounts/login/")
    elif expected == "forbidden":
        assert response.status_code == 403
    elif expected == "not_found":
        assert response.status_code == 404
    else:
        assert response.status_code in (200, 302), response.content[:500]
    if expected != "ok":
        assert _snapshot() == before, "a refused request changed something"

    body = response.content.decode()
    # No response ever holds an API key, its ciphertext, or a tenant the actor is not part of.
    for key in (API_KEY_A, API_KEY_B):
        assert key not in body
    for ciphertext in Tenant.objects.values_list("api_key_ciphertext", flat=True):
        assert ciphertext not in body
    if user is None or not user.is_superuser:
        visible = set(
            Membership.objects.filter(user=user).values_list("tenant__name", flat=True)
            if user
            else []
        )
        for name in Tenant.objects.exclude(name__in=visible).values_list("name", flat=True):
            assert name not in body, f"{actor} saw {name}"


def test_another_tenants_member_answers_404_under_your_own_tenant(client, world):
    users, tenants = world
    client.force_login(users["adam"])
    bobs = Membership.objects.get(user=users["bob"])
    for suffix in ("role/", "remove/"):
        url = f"/tenants/{tenants['own'].slug}/members/{bobs.pk}/{suffix}"
        assert client.get(url).status_code in (404, 405)
        assert client.post(url, {"role": "admin", "confirm": "on"}).status_code == 404
    bobs.refresh_from_db()
    assert bobs.role == Role.STAFF


def test_the_raw_column_never_holds_the_plaintext_key(world):
    with connection.cursor() as cursor:
        cursor.execute("SELECT slug, api_key_ciphertext, api_key_last4 FROM trunks_tenant")
        rows = cursor.fetchall()
    assert len(rows) == 2
    for _slug, ciphertext, last4 in rows:
        assert ciphertext
        assert API_KEY_A not in ciphertext and API_KEY_B not in ciphertext
        assert "secret" not in ciphertext
        assert len(last4) == 4
    # Nor the audit log.
    for data in AuditRecord.objects.values_list("data", flat=True):
        assert API_KEY_A not in str(data) and API_KEY_B not in str(data)
