"""The authentication backend for people who signed in through the identity provider.

portal.oidc verifies the provider's answer and trunks.accounts.services finds or links the user;
this backend is what Django's session remembers them by (get_user refuses inactive users)."""

from django.contrib.auth.backends import ModelBackend


class OidcBackend(ModelBackend):
    def authenticate(self, request, oidc_user=None, **kwargs):
        # Only ever handed a user that services.oidc_user_resolve found; never a password.
        if oidc_user is not None and self.user_can_authenticate(oidc_user):
            return oidc_user
        return None
