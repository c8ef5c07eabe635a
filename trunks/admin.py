"""Django admin for the portal's models. API keys are write-only; every change goes through services.

Saving here calls the same services as the portal's pages, so each change is authorised and
written to the audit log. The stored ciphertext is never shown: only the masked fingerprint.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from .errors import NotPermitted, PortalError
from .models import AuditRecord, Membership, Tenant, Trunk
from .reauth import reauth_is_fresh, reauth_redirect
from .tenants import members, services
from .tenants.services import (
    api_key_clean,
    tenant_base_url_clean,
    tenant_name_clean,
    tenant_slug_clean,
)


class TenantAdminForm(forms.ModelForm):
    """The tenant's fields plus a write-only API key (empty leaves the stored key alone)."""

    api_key = forms.CharField(
        label="Set a new API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Write-only: leave empty to keep the current key. It is never shown again.",
    )
    confirm_replace = forms.BooleanField(
        label="Replace the current key",
        required=False,
        help_text="Needed when the tenant has a key already.",
    )

    class Meta:
        model = Tenant
        fields = ["name", "slug", "is_active", "base_url"]

    def _service_clean(self, cleaner, field):
        try:
            return cleaner(self.cleaned_data.get(field, ""))
        except PortalError as exc:
            raise ValidationError(exc.message) from None

    def clean_name(self):
        return self._service_clean(tenant_name_clean, "name")

    def clean_slug(self):
        return self._service_clean(tenant_slug_clean, "slug")

    def clean_base_url(self):
        return self._service_clean(tenant_base_url_clean, "base_url")

    def clean_api_key(self):
        api_key = self.cleaned_data.get("api_key", "")
        if api_key:
            try:
                api_key_clean(api_key)
            except PortalError as exc:
                raise ValidationError(exc.message) from None
        return api_key

    def clean(self):
        cleaned = super().clean()
        if (
            cleaned.get("api_key")
            and self.instance.pk
            and self.instance.has_api_key
            and not cleaned.get("confirm_replace")
        ):
            self.add_error(
                "confirm_replace", "This tenant has a key already: tick to confirm replacing it."
            )
        return cleaned


class MembershipInline(admin.TabularInline):
    """Members, read-only here: add or change them under Memberships (audited)."""

    model = Membership
    extra = 0
    can_delete = False
    fields = ["user", "role", "created_at"]
    readonly_fields = ["user", "role", "created_at"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    form = TenantAdminForm
    list_display = ["name", "slug", "is_active", "api_key_masked", "connection_ok"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = [
        "api_key_masked",
        "api_key_set_at",
        "api_key_set_by",
        "connection_checked_at",
        "connection_ok",
        "connection_message",
    ]
    fieldsets = [
        (None, {"fields": ["name", "slug", "is_active", "base_url"]}),
        (
            "API key (write-only)",
            {
                "fields": [
                    "api_key_masked",
                    "api_key_set_at",
                    "api_key_set_by",
                    "api_key",
                    "confirm_replace",
                ]
            },
        ),
        (
            "Connection",
            {"fields": ["connection_checked_at", "connection_ok", "connection_message"]},
        ),
    ]
    inlines = [MembershipInline]

    @method_decorator(sensitive_post_parameters("api_key"))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if (
            request.method == "POST"
            and request.POST.get("api_key", "").strip()
            and not reauth_is_fresh(request)
        ):
            # As in the portal: a key is set only after the password was confirmed recently.
            messages.warning(
                request, "Confirm your password, then set the API key again. Nothing was saved."
            )
            return reauth_redirect(request)
        return super().changeform_view(request, object_id, form_url, extra_context)

    @admin.display(description="API key")
    def api_key_masked(self, obj):
        return obj.api_key_masked or "no key"

    def save_model(self, request, obj, form, change):
        data = {f: form.cleaned_data[f] for f in ["name", "slug", "base_url", "is_active"]}
        try:
            if change:
                saved = services.tenant_update(
                    actor=request.user, tenant=obj, request=request, **data
                )
            else:
                saved = services.tenant_create(actor=request.user, request=request, **data)
            if form.cleaned_data.get("api_key"):
                saved = services.tenant_credential_set(
                    actor=request.user,
                    tenant=saved,
                    api_key=form.cleaned_data["api_key"],
                    request=request,
                )
        except NotPermitted as exc:
            raise PermissionDenied(exc.message) from None
        # The admin goes on with `obj` (redirects, inlines, its log entry): make it the saved row.
        obj.__dict__.update({k: v for k, v in saved.__dict__.items() if not k.startswith("_")})
        obj._state.adding = False
        obj._state.db = saved._state.db

    def delete_model(self, request, obj):
        # Tenants hold the audit log (PROTECTed): deactivate instead.
        messages.error(request, "Tenants are never deleted (their audit log stays): deactivate it.")

    def has_delete_permission(self, request, obj=None):
        return False


class MembershipAdminForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["user", "tenant", "role"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    form = MembershipAdminForm
    list_display = ["user", "tenant", "role"]
    list_filter = ["role", "tenant"]
    search_fields = ["user__username", "tenant__name"]
    autocomplete_fields = ["user", "tenant"]
    actions = None

    def get_readonly_fields(self, request, obj=None):
        # A membership moves neither user nor tenant: remove it and add another.
        return ["user", "tenant"] if obj else []

    def save_model(self, request, obj, form, change):
        try:
            if change:
                saved = members.member_set_role(
                    actor=request.user,
                    tenant=obj.tenant,
                    membership_id=obj.pk,
                    role=form.cleaned_data["role"],
                    request=request,
                )
            else:
                saved = members.member_add(
                    actor=request.user,
                    tenant=form.cleaned_data["tenant"],
                    username=form.cleaned_data["user"].get_username(),
                    role=form.cleaned_data["role"],
                    request=request,
                ).membership
        except NotPermitted as exc:
            raise PermissionDenied(exc.message) from None
        obj.pk = saved.pk
        obj._state.adding = False

    def delete_model(self, request, obj):
        members.member_remove(
            actor=request.user, tenant=obj.tenant, membership_id=obj.pk, request=request
        )


class ReadOnlyAdmin(admin.ModelAdmin):
    """Seen, never added, changed or deleted here: what it holds changes through the portal."""

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditRecord)
class AuditRecordAdmin(ReadOnlyAdmin):
    """Read-only: the audit log is append-only (no add, change or delete, here or anywhere)."""

    list_display = [
        "id",
        "started_at",
        "tenant_name",
        "actor_username",
        "kind",
        "status",
        "trunk_username",
        "caller_id_number",
    ]
    list_filter = ["status", "kind"]
    search_fields = ["trunk_username", "description", "caller_id_number", "actor_username"]
    ordering = ["-started_at", "-id"]


@admin.register(Trunk)
class TrunkAdmin(ReadOnlyAdmin):
    """Read-only: a trunk changes through its page in the portal (sent to Crazytel, audited)."""

    list_display = [
        "username",
        "tenant",
        "description",
        "caller_id_number",
        "enabled",
        "state",
        "created_by_username",
        "created_at",
    ]
    list_filter = ["enabled", "state", "tenant"]
    list_select_related = ["tenant"]
    search_fields = ["username", "description", "caller_id_number"]
    ordering = ["-created_at", "-id"]
