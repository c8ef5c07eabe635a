"""Issue 16.9: a tenant's key goes only to an allowed https:// host — checked when the base URL is
saved (form and service) and before every call (trunks.tenants.upstream)."""

import pytest
import responses

from trunks.crazytel.errors import CrazytelError
from trunks.errors import InvalidInput
from trunks.models import Tenant
from trunks.tenants import services
from trunks.tenants.upstream import UpstreamNotAllowed, crazytel_client_for, upstream_url_problem

KEY = "allow-list-key-0001"


@pytest.fixture
def strict(settings):
    """As in production: Crazytel's host only, https only."""
    settings.CRAZYTEL_UPSTREAM_HOSTS = ["crazytel.io"]
    settings.CRAZYTEL_UPSTREAM_HTTP_ALLOWED = False
    return settings


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.5/api/v1",
        "https://localhost/api/v1",
        "https://crazytel.io.evil.example/api/v1",
        "https://user:pw@crazytel.io/api/v1",
        "http://crazytel.io/api/v1",
    ],
)
def test_a_superuser_cannot_point_a_tenant_at_an_address_off_the_allow_list(
    url, strict, root, tenant_a
):
    with pytest.raises(InvalidInput):
        services.tenant_update(actor=root, tenant=tenant_a, base_url=url)
    tenant_a.refresh_from_db()
    assert tenant_a.base_url == ""


def test_crazytels_own_host_over_https_is_allowed(strict, root, tenant_a):
    services.tenant_update(actor=root, tenant=tenant_a, base_url="https://crazytel.io/api/v2")
    assert upstream_url_problem("https://crazytel.io/api/v1") == ""


def test_the_form_refuses_it_on_the_field(client, strict, root, tenant_a):
    client.force_login(root)
    response = client.post(
        "/tenants/alpha/edit/",
        {
            "name": tenant_a.name,
            "slug": "alpha",
            "base_url": "https://10.0.0.5/",
            "is_active": "on",
        },
    )
    assert "may send API keys only to these hosts" in response.content.decode()


def test_a_subdomain_entry_allows_that_domain_only(settings):
    settings.CRAZYTEL_UPSTREAM_HOSTS = [".crazytel.io"]
    settings.CRAZYTEL_UPSTREAM_HTTP_ALLOWED = False
    assert upstream_url_problem("https://api.crazytel.io/v1") == ""
    assert upstream_url_problem("https://crazytel.io/v1") == ""
    assert upstream_url_problem("https://evilcrazytel.io/v1") != ""


def test_every_call_checks_the_stored_url_first_and_sends_nothing(strict, tenant_a, adam):
    # Saved before the allow-list existed (or the setting narrowed since): written directly.
    services.tenant_credential_set(actor=adam, tenant=tenant_a, api_key=KEY)
    Tenant.objects.filter(pk=tenant_a.pk).update(base_url="https://10.0.0.5/api/v1")
    tenant_a.refresh_from_db()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        with pytest.raises(UpstreamNotAllowed):
            crazytel_client_for(tenant_a)
        result = services.tenant_connection_test(actor=adam, tenant=tenant_a)
        assert len(mock.calls) == 0
    assert not result.ok and "may send API keys only" in result.message
    assert issubclass(UpstreamNotAllowed, CrazytelError)  # every caller already handles it


def test_make_runs_sandbox_stays_allowed_in_debug():
    """`make run` (DEBUG, sandbox on) serves the sandbox on this machine over http."""
    import subprocess
    import sys

    env = {
        "DEBUG": "true",
        "SANDBOX_ENABLED": "true",
        "PATH": "/usr/bin:/bin",
        "SECRET_KEY": "x" * 50,
    }
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='portal.settings'; django.setup();"
        "from trunks.tenants.upstream import upstream_url_problem as p;"
        "print(repr(p('http://127.0.0.1:8102/sandbox/api/v1')), repr(p('https://crazytel.io/api/v1')),"
        " bool(p('http://10.0.0.5/')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["''", "''", "True"]
