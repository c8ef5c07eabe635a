"""Django admin for the sandbox: accounts (numbers, balance, faults) editable; trunks read-only."""

from django import forms
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


class SandboxAccountForm(forms.ModelForm):
    """The key is write-only here too: typed to set or replace it, never shown again."""

    new_api_key = forms.CharField(
        label="API key",
        required=False,
        strip=True,
        min_length=12,
        max_length=100,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Type a key to set it (at least 12 characters). Leave empty to keep the current one.",
    )

    class Meta:
        model = SandboxAccount
        fields = [
            "name",
            "account_code",
            "balance",
            "verified_numbers",
            "numbers_shape",
            "rate_limit_per_minute",
            *SandboxAccount.FAULT_FIELDS,
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            self.fields["new_api_key"].required = True

    def clean_new_api_key(self):
        key = self.cleaned_data["new_api_key"]
        if key and not (key.isascii() and key.isprintable() and " " not in key):
            raise forms.ValidationError("Use printable ASCII characters without spaces.")
        clash = SandboxAccount.objects.filter(api_key=key).exclude(pk=self.instance.pk)
        if key and clash.exists():
            raise forms.ValidationError("Another sandbox account already uses this key.")
        return key

    def save(self, commit=True):
        if self.cleaned_data.get("new_api_key"):
            self.instance.api_key = self.cleaned_data["new_api_key"]
        return super().save(commit=commit)


@admin.register(SandboxAccount)
class SandboxAccountAdmin(admin.ModelAdmin):
    form = SandboxAccountForm
    list_display = [
        "name",
        "api_key_masked",
        "account_code",
        "balance",
        "numbers_shape",
        "has_faults",
        "updated_at",
    ]
    search_fields = ["name", "account_code"]
    readonly_fields = ["api_key_masked", "created_at", "updated_at"]
    actions = ["clear_faults"]
    inlines = [SandboxTrunkInline]
    fieldsets = [
        (None, {"fields": ["name", "api_key_masked", "new_api_key", "account_code", "balance"]}),
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
                "fields": list(SandboxAccount.FAULT_FIELDS),
                "description": "What this key's Crazytel does wrong, to rehearse every outcome.",
            },
        ),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(description="Current key")
    def api_key_masked(self, obj):
        return obj.api_key_masked if obj and obj.pk else "—"

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
