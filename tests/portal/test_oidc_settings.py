"""How the settings read the identity provider's configuration (portal.oidc_settings)."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal.oidc_settings import csp_form_action, oidc_group_roles


def test_group_roles_map_each_group_to_its_tenants_and_roles():
    raw = "voice-acme-admins=acme:admin, voice-acme=acme:staff,voice-acme=beta:manager,"
    assert oidc_group_roles(raw) == {
        "voice-acme-admins": [("acme", "admin")],
        "voice-acme": [("acme", "staff"), ("beta", "manager")],
    }
    assert oidc_group_roles("") == {}


@pytest.mark.parametrize("raw", ["acme:admin", "g=acme", "g=acme:owner", "=acme:staff", "g=:staff"])
def test_a_group_role_that_is_not_group_tenant_role_stops_start_up(raw):
    with pytest.raises(ImproperlyConfigured, match="is not group=tenant:role"):
        oidc_group_roles(raw)


def test_logging_out_at_a_provider_allows_its_origin_as_a_form_action():
    assert csp_form_action("https://id.example.com/realms/x") == [
        "'self'",
        "https://id.example.com",
    ]
    assert csp_form_action("") == ["'self'"]
