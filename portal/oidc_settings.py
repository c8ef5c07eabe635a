"""What the settings make of the identity provider's configuration (pure functions, no Django
setup needed): the group-to-role mapping and the CSP form-action a provider's log-out needs."""

from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP


def oidc_group_roles(raw: str) -> dict[str, list[tuple[str, str]]]:
    """OIDC_GROUP_ROLES: "group=tenant-slug:role,…" → {group: [(slug, role), …]}."""
    mapping: dict[str, list[tuple[str, str]]] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        group, sep, target = item.rpartition("=")
        slug, _, role = target.partition(":")
        if not (
            sep and group.strip() and slug.strip() and role.strip() in {"staff", "manager", "admin"}
        ):
            raise ImproperlyConfigured(
                f"OIDC_GROUP_ROLES: {item!r} is not group=tenant:role (role staff, manager or admin)."
            )
        mapping.setdefault(group.strip(), []).append((slug.strip(), role.strip()))
    return mapping


def csp_form_action(issuer: str) -> list[str]:
    """Log-out is a form whose answer redirects to the provider's end-session endpoint: browsers
    apply form-action to that redirect, so the provider's origin must be allowed."""
    parts = urlsplit(issuer)
    return [CSP.SELF, f"{parts.scheme}://{parts.netloc}"] if issuer else [CSP.SELF]
