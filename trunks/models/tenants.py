"""Tenants, who belongs to them with which role, invitations, and forced password changes."""

from dataclasses import dataclass

from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    """A member's role in one tenant. Roles nest: a manager may do what staff do, an admin both."""

    STAFF = "staff", "Staff"
    MANAGER = "manager", "Manager"
    ADMIN = "admin", "Admin"

    @property
    def rank(self) -> int:
        """1 for staff, 2 for managers, 3 for admins: the order the roles nest in."""
        return _RANKS[self]

    def includes(self, other: "Role | str") -> bool:
        """Whether this role may do what `other` may (an admin includes a manager)."""
        return self.rank >= Role(other).rank

    @classmethod
    def at_least(cls, min_role: "Role | str") -> list["Role"]:
        """`min_role` and every role above it."""
        return [role for role in cls if role.includes(min_role)]

    @classmethod
    def best(cls, roles) -> "Role | None":
        """The highest of `roles` (values or members; unknown ones ignored), or None."""
        known = [cls(r) for r in roles if r in cls.values]
        return max(known, key=lambda role: role.rank, default=None)


# Each role's rank, in the order the roles are declared (a page's menu asks ~10 times).
_RANKS = {role: index + 1 for index, role in enumerate(Role)}


@dataclass(frozen=True)
class TenantReadiness:
    """Whether staff may create trunks for a tenant now, and if not, why (for a person to read)."""

    ready: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ready


class Tenant(models.Model):
    """A team with its own Crazytel account and API key."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=50, unique=True)
    is_active = models.BooleanField(default=True)
    base_url = models.URLField(
        "Crazytel base URL",
        blank=True,
        help_text="Leave empty to use the portal's default Crazytel API URL.",
    )
    # The API key, encrypted (trunks.tenants.credentials). Never the plaintext; never shown again.
    api_key_ciphertext = models.TextField(blank=True, editable=False)
    api_key_last4 = models.CharField(max_length=4, blank=True, editable=False)
    api_key_set_at = models.DateTimeField(null=True, blank=True, editable=False)
    api_key_set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    # The last connection check (a balance call) and what it found.
    connection_checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    connection_ok = models.BooleanField(null=True, blank=True, editable=False)
    connection_message = models.CharField(max_length=300, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key_ciphertext)

    @property
    def api_key_masked(self) -> str:
        return f"••••{self.api_key_last4}" if self.has_api_key else ""

    @property
    def effective_base_url(self) -> str:
        return self.base_url or settings.CRAZYTEL_API_BASE_URL

    @property
    def readiness(self) -> TenantReadiness:
        """Can trunks be created for this tenant? Inactive tenants and tenants without a key cannot.

        A failing connection does not block the form (a new attempt tells staff what Crazytel
        says), but the page warns about it.
        """
        if not self.is_active:
            return TenantReadiness(
                False,
                f"{self.name} is deactivated, so no trunks can be created for it. "
                "Ask one of its admins to activate it again.",
            )
        if not self.has_api_key:
            return TenantReadiness(
                False,
                f"{self.name} has no Crazytel API key yet, so no trunks can be created for it. "
                "Ask one of its admins to set the key.",
            )
        return TenantReadiness(True, "")


class Membership(models.Model):
    """A user's role in one tenant. A user may belong to several tenants with different roles."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.STAFF)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_user_tenant_unique")
        ]
        ordering = ["tenant__name", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.role})"


class Invitation(models.Model):
    """A tenant admin's invitation of a username: the person with that username accepts or declines
    it when they next sign in (trunks.tenants.invitations).

    Kept by username, not by user, so that inviting a name nobody has looks exactly like inviting
    someone of another tenant: the admin learns nothing about who exists elsewhere.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations")
    username = models.CharField(max_length=150)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.STAFF)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "username"], name="invitation_tenant_username_unique"
            )
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.username} invited to {self.tenant} ({self.role})"


class PasswordChangeRequired(models.Model):
    """The user's password was chosen by someone else (an admin, a command): until they set their
    own, they reach no page but "set your password" (portal.password_change)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="password_change_required"
    )
    since = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user} must set a password"
