"""Sign-in through the identity provider: find or safely link the portal user, apply the group
roles, and record every attempt. Views: portal.oidc."""

import logging
import re
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from trunks.audit.writer import audit_event_record, request_meta
from trunks.errors import PortalError
from trunks.models import AuditKind, Membership, Role, Tenant

from .models import GroupMembership, OidcIdentity, SignInEvent, SignInOutcome

logger = logging.getLogger(__name__)

VIA_GROUPS = "identity provider groups"


class SignInRefused(PortalError):
    """A sign-in the portal will not complete. `reason` is a short code for the log."""

    def __init__(self, message: str, *, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class OidcClaims:
    """What the portal uses from a verified ID token (and the userinfo answer)."""

    issuer: str
    subject: str
    email: str = ""
    email_verified: bool = False
    username: str = ""
    name: str = ""
    groups: list[str] = field(default_factory=list)

    @classmethod
    def from_claims(cls, claims: dict, *, issuer: str, groups_claim: str = "groups"):
        groups = claims.get(groups_claim) or []
        if isinstance(groups, str):
            groups = [groups]
        verified = claims.get("email_verified")
        return cls(
            issuer=issuer,
            subject=str(claims["sub"]),
            email=str(claims.get("email") or "").strip(),
            # Some providers send "true" as text; anything else is not verified.
            email_verified=verified is True or str(verified).lower() == "true",
            username=str(claims.get("preferred_username") or "").strip(),
            name=str(claims.get("name") or "").strip(),
            groups=[str(g) for g in groups if isinstance(g, str | int)],
        )


def sign_in_event_record(
    *,
    method: str,
    outcome: SignInOutcome,
    request: HttpRequest | None,
    reason: str = "",
    message: str = "",
    user=None,
    claims: OidcClaims | None = None,
) -> SignInEvent:
    """Record one sign-in attempt (never a token, code or password)."""
    meta = request_meta(request)
    event = SignInEvent.objects.create(
        method=method,
        outcome=outcome,
        reason=reason[:40],
        message=message[:300],
        user=user,
        username=user.get_username() if user is not None else (claims.username if claims else ""),
        issuer=claims.issuer[:300] if claims else "",
        subject=claims.subject[:255] if claims else "",
        email=claims.email[:254] if claims else "",
        client_ip=meta.get("client_ip"),
        user_agent=meta.get("user_agent", ""),
        request_id=meta.get("request_id", ""),
    )
    log = logger.info if outcome == SignInOutcome.SUCCEEDED else logger.warning
    log("sign-in %s method=%s reason=%s user=%s", outcome, method, reason, event.username)
    return event


def _username_free(base: str) -> str:
    User = get_user_model()
    base = re.sub(r"[^\w.@+-]", "", base)[:140] or "user"
    candidate, n = base, 1
    while User.objects.filter(**{f"{User.USERNAME_FIELD}__iexact": candidate}).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def oidc_user_resolve(*, claims: OidcClaims):
    """The portal user for these verified claims: linked by `sub`, or linked now through a
    verified e-mail, or created (no tenant). Raises SignInRefused."""
    get_user_model()
    with transaction.atomic():
        identity = (
            OidcIdentity.objects.select_related("user")
            .filter(issuer=claims.issuer, subject=claims.subject)
            .first()
        )
        user = identity.user if identity is not None else _link_or_create(claims=claims)
        if not user.is_active:
            raise SignInRefused(
                "Your portal account is disabled. Ask a portal administrator.", reason="inactive"
            )
        OidcIdentity.objects.filter(issuer=claims.issuer, subject=claims.subject).update(
            last_sign_in_at=timezone.now()
        )
    return user


def _link_or_create(*, claims: OidcClaims):
    User = get_user_model()
    same_email = list(User.objects.filter(email__iexact=claims.email)[:2]) if claims.email else []
    if same_email and not claims.email_verified:
        # Never let an unverified address take over an existing account.
        raise SignInRefused(
            "Your identity provider has not verified your e-mail address, and a portal account "
            "already uses it, so the two cannot be linked. Ask a portal administrator.",
            reason="email_unverified",
        )
    if len(same_email) > 1:
        raise SignInRefused(
            "More than one portal account uses your e-mail address; a portal administrator must "
            "link yours.",
            reason="email_ambiguous",
        )
    if same_email:
        user = same_email[0]
        if user.oidc_identities.filter(issuer=claims.issuer).exists():
            raise SignInRefused(
                "Your e-mail address belongs to a portal account that is linked to another "
                "identity. Ask a portal administrator.",
                reason="linked_elsewhere",
            )
    else:
        user = User(
            **{User.USERNAME_FIELD: _username_free(claims.username or claims.email.split("@")[0])},
            email=claims.email if claims.email_verified else "",
            first_name=claims.name[:150],
        )
        user.set_unusable_password()
        user.save()
    try:
        with transaction.atomic():
            OidcIdentity.objects.create(
                user=user, issuer=claims.issuer, subject=claims.subject, email_at_link=claims.email
            )
    except IntegrityError:
        raise SignInRefused(
            "Another sign-in linked this account at the same moment; try again.", reason="race"
        ) from None
    return user


# --- Roles from groups -----------------------------------------------------------------------


def group_roles_wanted(*, groups: list[str]) -> dict[str, Role]:
    """{tenant slug: the highest role the person's groups give there} from OIDC_GROUP_ROLES."""
    wanted: dict[str, Role] = {}
    for group in groups:
        for slug, role in settings.OIDC_GROUP_ROLES.get(group, []):
            role = Role(role)
            if slug not in wanted or role.rank > wanted[slug].rank:
                wanted[slug] = role
    return wanted


def group_roles_apply(*, user, groups: list[str], request: HttpRequest | None = None) -> list[str]:
    """Make the memberships the groups grant match the groups, and touch no other membership.

    Each change is an admin event in the tenant's audit log (via "identity provider groups").
    Returns a line per change, for the log."""
    if not settings.OIDC_GROUP_ROLES:
        return []
    wanted = group_roles_wanted(groups=groups)
    mapped_slugs = {slug for targets in settings.OIDC_GROUP_ROLES.values() for slug, _ in targets}
    changes: list[str] = []
    with transaction.atomic():
        tenants = {t.slug: t for t in Tenant.objects.filter(slug__in=mapped_slugs)}
        for slug in sorted(mapped_slugs - tenants.keys()):
            logger.warning("OIDC_GROUP_ROLES names tenant %r, which does not exist", slug)
        current = {
            m.tenant.slug: m
            for m in Membership.objects.select_for_update(of=("self",))
            .select_related("tenant", "group_grant")
            .filter(user=user, tenant__slug__in=tenants.keys())
        }
        for slug, tenant in tenants.items():
            membership = current.get(slug)
            role = wanted.get(slug)
            granted_by_groups = membership is not None and hasattr(membership, "group_grant")
            if membership is not None and not granted_by_groups:
                continue  # Granted by hand: the groups never change it.
            data = {"username": user.get_username(), "via": VIA_GROUPS, "groups": sorted(groups)}
            if membership is None and role is not None:
                membership = Membership.objects.create(user=user, tenant=tenant, role=role)
                GroupMembership.objects.create(membership=membership, groups=sorted(groups))
                audit_event_record(
                    kind=AuditKind.MEMBER_ADDED,
                    tenant=tenant,
                    actor=None,
                    request=request,
                    data={**data, "role": role.value, "user_created": False},
                )
                changes.append(f"added to {slug} as {role.value}")
            elif membership is not None and role is None:
                old = membership.role
                membership.delete()
                audit_event_record(
                    kind=AuditKind.MEMBER_REMOVED,
                    tenant=tenant,
                    actor=None,
                    request=request,
                    data={**data, "role": old},
                )
                changes.append(f"removed from {slug}")
            elif membership is not None and membership.role != role:
                old = membership.role
                membership.role = role
                membership.save(update_fields=["role"])
                audit_event_record(
                    kind=AuditKind.MEMBER_ROLE_CHANGED,
                    tenant=tenant,
                    actor=None,
                    request=request,
                    data={**data, "role": [old, role.value]},
                )
                changes.append(f"{slug} role {old} → {role.value}")
    return changes
