"""Django admin for the sandbox: accounts (numbers, balance, faults) editable; trunks read-only."""

from django.contrib import admin, messages

from .models import SandboxAccount, SandboxTrunk
from .services import sandbox_faults_clear


class SandboxTrunkInline(admin.TabularInline):
    model = SandboxTrunk
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ["username", "caller_id_number", "sms_sender", "description", "enabled", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(SandboxAccount)
class SandboxAccountAdmin(admin.ModelAdmin):
    list_display = ["name", "account_code", "balance", "numbers_shape", "has_faults", "updated_at"]
    search_fields = ["name", "account_code"]
    readonly_fields = ["created_at", "updated_at"]
    actions = ["clear_faults"]
    inlines = [SandboxTrunkInline]
    fieldsets = [
        (None, {"fields": ["name", "api_key", "account_code", "balance"]}),
        (
            "Verified numbers",
            {
                "fields": ["verified_numbers", "numbers_shape"],
                "description": "Numbers in international form without + (61298765432, 61412345678).",
            },
        ),
        ("Rate limit", {"fields": ["rate_limit_per_minute"]}),
        (
            "Faults",
            {
                "fields": [
                    "fault_scope",
                    "fault_remaining",
                    "latency_ms",
                    "forced_status",
                    "retry_after",
                    "html_error",
                    "malformed_json",
                    "invalid_username",
                    "drop_connection",
                    "create_then_timeout",
                    "timeout_sleep_ms",
                ],
                "description": "What this key's Crazytel does wrong, to rehearse every outcome.",
            },
        ),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(boolean=True, description="Faults on")
    def has_faults(self, obj):
        return obj.has_faults

    @admin.action(description="Clear the faults of the selected accounts")
    def clear_faults(self, request, queryset):
        for account in queryset:
            sandbox_faults_clear(account=account)
        self.message_user(
            request, f"Faults cleared on {queryset.count()} account(s).", messages.SUCCESS
        )


@admin.register(SandboxTrunk)
class SandboxTrunkAdmin(admin.ModelAdmin):
    list_display = [
        "username",
        "account",
        "caller_id_number",
        "sms_sender",
        "enabled",
        "created_at",
    ]
    list_filter = ["account", "enabled"]
    search_fields = ["username", "description", "caller_id_number"]
    exclude = ["password_digest"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name != "password_digest"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
