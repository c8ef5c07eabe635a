"""The admin's user pages, and read-only pages: who is linked to which provider identity, and the
sign-in log."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from trunks.tenants.accounts import password_change_require

from .models import GroupMembership, OidcIdentity, SignInEvent

User = get_user_model()


class PortalUserAdmin(UserAdmin):
    """Django's user admin, except that a password chosen here for someone else must be replaced at
    that person's next login — as one set by a tenant admin or the command line must — so no admin
    keeps knowing a working password."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change and obj.has_usable_password() and obj.pk != request.user.pk:
            password_change_require(user=obj)

    def user_change_password(self, request, id, form_url=""):
        response = super().user_change_password(request, id, form_url)
        changed = request.method == "POST" and response.status_code == 302
        if changed and str(id) != str(request.user.pk):
            user = self.get_object(request, id)
            if user is not None and user.has_usable_password():
                password_change_require(user=user)
        return response


admin.site.unregister(User)
admin.site.register(User, PortalUserAdmin)


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
