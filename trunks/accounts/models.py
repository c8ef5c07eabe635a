"""Who a person is at the identity provider, the memberships their groups gave them, and the
log of sign-in attempts (which belong to no tenant, so not to the tenants' audit chains)."""

from django.conf import settings
from django.db import models


class OidcIdentity(models.Model):
    """A portal user linked to one subject (`sub`) at one issuer: matched by this once linked."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oidc_identities"
    )
    issuer = models.CharField(max_length=300)
    subject = models.CharField(max_length=255)
    # The e-mail claim when the link was made (how it was made), for the admin reading the log.
    email_at_link = models.EmailField(blank=True)
    linked_at = models.DateTimeField(auto_now_add=True)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="oidc_identity_unique"),
            models.UniqueConstraint(fields=["user", "issuer"], name="oidc_identity_one_per_user"),
        ]
        verbose_name = "identity provider link"

    def __str__(self) -> str:
        return f"{self.user} = {self.subject} at {self.issuer}"


class GroupMembership(models.Model):
    """A membership that OIDC_GROUP_ROLES granted: only these are changed or removed at sign-in.

    A membership granted by hand has no row here and is never touched by the group mapping."""

    membership = models.OneToOneField(
        "trunks.Membership", on_delete=models.CASCADE, related_name="group_grant"
    )
    groups = models.JSONField(default=list)
    granted_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.membership} (from groups {', '.join(self.groups)})"


class SignInOutcome(models.TextChoices):
    SUCCEEDED = "succeeded", "Signed in"
    FAILED = "failed", "Refused"


class SignInEvent(models.Model):
    """One sign-in attempt through the identity provider, or one second-factor failure.

    Append-only in spirit: written by trunks.accounts.services, read in the admin. Holds no token,
    no code and no password."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    method = models.CharField(max_length=10)  # "oidc" or "totp"
    outcome = models.CharField(max_length=10, choices=SignInOutcome.choices)
    reason = models.CharField(max_length=40, blank=True)
    message = models.CharField(max_length=300, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    username = models.CharField(max_length=150, blank=True)
    issuer = models.CharField(max_length=300, blank=True)
    subject = models.CharField(max_length=255, blank=True)
    email = models.CharField(max_length=254, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.method} {self.outcome} {self.reason}"
