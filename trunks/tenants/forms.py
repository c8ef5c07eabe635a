"""The admins' forms: a tenant, its API key, its members. Services do the work (trunks.tenants)."""

from django import forms

from trunks.errors import PortalErrorsMixin
from trunks.models import Role, Tenant

from .upstream import upstream_url_problem


class TenantForm(PortalErrorsMixin, forms.Form):
    """Create or edit a tenant. Only superusers may set the base URL (see trunks.tenants.services)."""

    name = forms.CharField(max_length=100, help_text="The team's name, as people know it.")
    slug = forms.SlugField(
        label="Short name",
        max_length=50,
        help_text="Lower-case letters, digits and hyphens; used in the portal's URLs. "
        "Suggested from the name until you edit it.",
        # static/js/tenant_form.js fills it from the name (no inline script: CSP).
        widget=forms.TextInput(attrs={"data-slug-from": "id_name"}),
    )
    base_url = forms.URLField(
        label="Crazytel base URL",
        required=False,
        assume_scheme="https",
        help_text="Leave empty to use the portal's default Crazytel API URL.",
    )
    is_active = forms.BooleanField(
        label="Active",
        required=False,
        initial=True,
        help_text="Staff can create trunks only for an active tenant.",
    )

    def __init__(self, *args, can_set_base_url: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if not can_set_base_url:
            self.fields["base_url"].disabled = True
            self.fields[
                "base_url"
            ].help_text = "Only portal administrators may change where the key is sent."

    def clean_base_url(self):
        base_url = self.cleaned_data.get("base_url") or ""
        # The service checks again (trunks.tenants.services): this answers on the field at once.
        problem = (
            upstream_url_problem(base_url)
            if base_url and not self.fields["base_url"].disabled
            else ""
        )
        if problem:
            raise forms.ValidationError(problem)
        return base_url

    @classmethod
    def initial_for(cls, tenant: Tenant) -> dict:
        return {
            "name": tenant.name,
            "slug": tenant.slug,
            "base_url": tenant.base_url,
            "is_active": tenant.is_active,
        }


class TenantKeyForm(PortalErrorsMixin, forms.Form):
    """Set or replace the tenant's API key. Write-only: never prefilled, never shown back."""

    api_key = forms.CharField(
        label="Crazytel API key",
        strip=True,
        max_length=256,
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"}
        ),
        help_text="From your Crazytel account. It is stored encrypted and never shown again.",
    )
    confirm_replace = forms.BooleanField(
        label="Yes, replace the current key",
        required=False,
    )
    save_anyway = forms.BooleanField(
        label="Save anyway",
        required=False,
        help_text="The portal tries a new key with Crazytel first and keeps the current key if "
        "Crazytel rejects the new one. Tick this to replace it all the same.",
    )

    def __init__(self, *args, replacing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.replacing = replacing
        if not replacing:
            del self.fields["confirm_replace"]
            del self.fields["save_anyway"]

    def clean_confirm_replace(self):
        confirmed = self.cleaned_data.get("confirm_replace")
        if self.replacing and not confirmed:
            raise forms.ValidationError(
                "This tenant has a key already. Tick the box to confirm you want to replace it."
            )
        return confirmed


class MemberAddForm(PortalErrorsMixin, forms.Form):
    """Add an existing user to the tenant, or create one (with a password shown once)."""

    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.STAFF)
    create_user = forms.BooleanField(
        label="Create this user if they do not exist yet",
        required=False,
        help_text="The portal then shows a generated password once, for you to pass on.",
    )


class MemberRoleForm(PortalErrorsMixin, forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ConfirmForm(forms.Form):
    """A yes-I-mean-it checkbox for removing things."""

    confirm = forms.BooleanField(label="Yes, remove", required=True)
