"""Django admin for the portal's models. API keys are write-only; audit records read-only."""

from django.contrib import admin

from .models import AuditRecord, Membership, Tenant


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "is_active", "api_key_masked", "connection_ok"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["api_key_masked", "api_key_set_at", "connection_checked_at", "connection_ok"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant", "role"]
    list_filter = ["role", "tenant"]
    autocomplete_fields = ["user"]


@admin.register(AuditRecord)
class AuditRecordAdmin(admin.ModelAdmin):
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

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
