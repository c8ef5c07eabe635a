"""Read-only admin pages: who is linked to which provider identity, and the sign-in log."""

from django.contrib import admin

from .models import GroupMembership, OidcIdentity, SignInEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(OidcIdentity)
class OidcIdentityAdmin(ReadOnlyAdmin):
    list_display = ["user", "subject", "issuer", "email_at_link", "linked_at", "last_sign_in_at"]
    search_fields = ["user__username", "subject", "email_at_link"]

    def has_delete_permission(self, request, obj=None):
        # Unlinking is allowed: the person's next sign-in links again by verified e-mail.
        return request.user.is_superuser


@admin.register(GroupMembership)
class GroupMembershipAdmin(ReadOnlyAdmin):
    list_display = ["membership", "groups", "granted_at"]

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SignInEvent)
class SignInEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "method", "outcome", "reason", "username", "email", "client_ip"]
    list_filter = ["method", "outcome", "reason"]
    search_fields = ["username", "email", "subject", "client_ip", "request_id"]
    date_hierarchy = "at"

    def has_delete_permission(self, request, obj=None):
        return False
