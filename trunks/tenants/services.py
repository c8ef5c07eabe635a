"""Tenants and their Crazytel credentials: create, change, (de)activate, set the key, test the
connection. Who may: a tenant's admins manage that tenant; superusers manage every tenant and alone
create tenants or change a tenant's Crazytel base URL (pointing it elsewhere would send the stored
key there). Members: trunks.tenants.members."""

import re
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import URLValidator, validate_slug
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from trunks.access import audit_actor, audit_via, require_superuser, require_tenant_admin
from trunks.audit.writer import audit_event_record
from trunks.crazytel.errors import CrazytelError, RejectedKey
from trunks.errors import Conflict, CredentialsUnavailable, InvalidInput
from trunks.models import AuditKind, AuditStatus, Tenant

from .credentials import CredentialError, api_key_encrypt
from .names import name_normalise, name_skeletons
from .upstream import crazytel_client_for, crazytel_client_with_key, upstream_url_problem

API_KEY_MIN_LENGTH = 8
API_KEY_MAX_LENGTH = 256
_API_KEY_RE = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces

CONNECTION_MESSAGE_MAX = 300
# Paths under /tenants/ that a tenant's short name must not shadow.
RESERVED_SLUGS = {"new"}


class KeyRejected(Conflict):
    """Crazytel rejects the new key and the admin did not ask to save it anyway."""


def tenant_name_clean(name: str) -> str:
    """The name normalised (trunks.tenants.names): NFKC, no invisible or control characters."""
    name = name_normalise(name)
    if not name:
        raise InvalidInput("Enter the tenant's name.", field="name")
    if len(name) > Tenant._meta.get_field("name").max_length:
        raise InvalidInput("The name is too long (100 characters at most).", field="name")
    return name


def tenant_slug_clean(slug: str) -> str:
    slug = (slug or "").strip().lower()
    try:
        validate_slug(slug)
    except ValidationError:
        raise InvalidInput(
            "The short name may hold only lower-case letters, digits, hyphens and underscores.",
            field="slug",
        ) from None
    if slug in RESERVED_SLUGS:
        raise InvalidInput(
            f"“{slug}” is reserved in the portal's URLs: choose another.", field="slug"
        )
    if len(slug) > Tenant._meta.get_field("slug").max_length:
        raise InvalidInput("The short name is too long (50 characters at most).", field="slug")
    return slug


def tenant_base_url_clean(base_url: str) -> str:
    base_url = (base_url or "").strip()
    if not base_url:
        return ""
    try:
        URLValidator(schemes=["http", "https"])(base_url)
    except ValidationError:
        raise InvalidInput(
            "Enter a full https:// URL, or leave it empty for the default.",
            field="base_url",
        ) from None
    problem = upstream_url_problem(base_url)
    if problem:
        raise InvalidInput(problem, field="base_url")
    return base_url.rstrip("/")


def _check_unique(*, name: str, slug: str, exclude_pk: int | None = None) -> None:
    others = Tenant.objects.exclude(pk=exclude_pk) if exclude_pk else Tenant.objects.all()
    # By skeleton: look-alike letters and case count as the same name. Tenants are few (a
    # company's teams), so their names are compared here rather than kept in another column.
    skeletons = name_skeletons(name)
    if any(name_skeletons(other) & skeletons for other in others.values_list("name", flat=True)):
        raise Conflict(
            "Another tenant already has this name, or one that looks the same.", field="name"
        )
    if others.filter(slug=slug).exists():
        raise Conflict("Another tenant already has this short name.", field="slug")


def tenant_create(
    *,
    actor,
    name: str,
    slug: str,
    base_url: str = "",
    is_active: bool = True,
    request: HttpRequest | None = None,
) -> Tenant:
    """Create a tenant (portal administrators only). Its API key is set separately."""
    require_superuser(actor, action="create tenants")
    name, slug, base_url = (
        tenant_name_clean(name),
        tenant_slug_clean(slug),
        tenant_base_url_clean(base_url),
    )
    _check_unique(name=name, slug=slug)
    try:
        with transaction.atomic():
            tenant = Tenant.objects.create(
                name=name, slug=slug, base_url=base_url, is_active=is_active
            )
            audit_event_record(
                kind=AuditKind.TENANT_CREATED,
                tenant=tenant,
                actor=audit_actor(actor),
                request=request,
                data={
                    "name": name,
                    "slug": slug,
                    "base_url": base_url,
                    "is_active": is_active,
                    **audit_via(actor),
                },
            )
    except IntegrityError:
        # Two admins creating the same tenant at once: the second one gets the same clear answer.
        raise Conflict(
            "Another tenant already has this name or short name.", field="slug"
        ) from None
    return tenant


def tenant_update(
    *,
    actor,
    tenant: Tenant,
    name: str | None = None,
    slug: str | None = None,
    base_url: str | None = None,
    is_active: bool | None = None,
    request: HttpRequest | None = None,
) -> Tenant:
    """Change a tenant's name, short name, base URL or state; None leaves a field as it is.

    Only superusers may change the base URL. Records one event listing each change (old → new).
    """
    require_tenant_admin(actor, tenant=tenant)
    with transaction.atomic():
        current = Tenant.objects.select_for_update().get(pk=tenant.pk)
        wanted = {
            "name": tenant_name_clean(name) if name is not None else current.name,
            "slug": tenant_slug_clean(slug) if slug is not None else current.slug,
            "base_url": tenant_base_url_clean(base_url)
            if base_url is not None
            else current.base_url,
            "is_active": bool(is_active) if is_active is not None else current.is_active,
        }
        changes = {
            field: [getattr(current, field), value]
            for field, value in wanted.items()
            if getattr(current, field) != value
        }
        if not changes:
            return current
        if "base_url" in changes:
            require_superuser(actor, action="change a tenant's Crazytel base URL")
        _check_unique(name=wanted["name"], slug=wanted["slug"], exclude_pk=current.pk)
        for field, value in wanted.items():
            setattr(current, field, value)
        try:
            with transaction.atomic():
                current.save(update_fields=[*changes, "updated_at"])
        except IntegrityError:
            raise Conflict(
                "Another tenant already has this name or short name.", field="slug"
            ) from None
        audit_event_record(
            kind=AuditKind.TENANT_UPDATED,
            tenant=current,
            actor=audit_actor(actor),
            request=request,
            data={"changes": changes, **audit_via(actor)},
        )
    return current


def tenant_set_active(
    *, actor, tenant: Tenant, is_active: bool, request: HttpRequest | None = None
) -> Tenant:
    """Activate or deactivate a tenant: an inactive tenant's staff cannot create trunks."""
    return tenant_update(actor=actor, tenant=tenant, is_active=is_active, request=request)


@sensitive_variables("api_key")
def api_key_clean(api_key: str) -> str:
    api_key = (api_key or "").strip()
    if not api_key:
        raise InvalidInput("Enter the API key.", field="api_key")
    if len(api_key) < API_KEY_MIN_LENGTH:
        raise InvalidInput(
            f"That is too short for a Crazytel API key ({API_KEY_MIN_LENGTH} characters at least).",
            field="api_key",
        )
    if len(api_key) > API_KEY_MAX_LENGTH:
        raise InvalidInput("That is too long for a Crazytel API key.", field="api_key")
    if not _API_KEY_RE.match(api_key):
        raise InvalidInput(
            "An API key holds no spaces or special characters: paste it exactly as Crazytel shows it.",
            field="api_key",
        )
    return api_key


@sensitive_variables("api_key")
def _key_try(*, tenant: Tenant, api_key: str) -> "ConnectionResult":
    """Ask Crazytel for the balance with `api_key` (not yet stored): does it accept the key?"""
    try:
        balance = crazytel_client_with_key(tenant=tenant, api_key=api_key).balance()
    except RejectedKey:
        return ConnectionResult(
            ok=False,
            message="Crazytel rejected this API key (401).",
            category="rejected_key",
        )
    except CrazytelError as exc:
        return ConnectionResult(ok=False, message=str(exc.message), category=str(exc.category))
    return ConnectionResult(
        ok=True,
        message=f"Connected to account {balance.account_code}.",
        account_code=str(balance.account_code),
        balance=balance.balance,
    )


@sensitive_variables("api_key")
def tenant_credential_set(
    *,
    actor,
    tenant: Tenant,
    api_key: str,
    save_anyway: bool = False,
    test_first: bool = False,
    request: HttpRequest | None = None,
) -> Tenant:
    """Store `api_key` encrypted for `tenant`, replacing any earlier one, after trying it.

    With `test_first` (the admins' page) the key is tried first (Crazytel's balance): a key Crazytel
    rejects does not replace a key that is not known to fail, unless `save_anyway` (KeyRejected
    otherwise), and the connection state holds what the try found ("untested" when Crazytel could
    not be asked). Without it (commands, the demo's seeding before the sandbox is served) the state
    goes back to "untested".
    Keeps only the last 4 characters in clear (the fingerprint shown as ••••abcd). The views ask
    for confirmation before replacing a key; the audit log records key_set or key_replaced, never
    the key.
    """
    require_tenant_admin(actor, tenant=tenant)
    api_key = api_key_clean(api_key)
    result = _key_try(tenant=tenant, api_key=api_key) if test_first else None
    rejected = result is not None and result.category == "rejected_key"
    with transaction.atomic():
        current = Tenant.objects.select_for_update().get(pk=tenant.pk)
        replacing = current.has_api_key
        if rejected and replacing and current.connection_ok is not False and not save_anyway:
            raise KeyRejected(
                "Crazytel rejected this key (401), so the current key stays. Check the key, or "
                "tick “save anyway” to replace the current key with it all the same.",
                field="api_key",
            )
        try:
            current.api_key_ciphertext = api_key_encrypt(tenant_id=current.pk, plaintext=api_key)
        except ImproperlyConfigured as exc:
            # Missing or malformed CREDENTIALS_ENCRYPTION_KEYS (`manage.py check` says so too).
            raise CredentialsUnavailable(
                f"The portal cannot store API keys right now: {exc} Ask the portal's operator."
            ) from None
        current.api_key_last4 = api_key[-4:]
        current.api_key_set_at = timezone.now()
        current.api_key_set_by = audit_actor(actor)
        tried = result is not None and (result.ok or rejected)
        current.connection_checked_at = timezone.now() if tried else None
        current.connection_ok = result.ok if tried else None
        current.connection_message = result.message[:CONNECTION_MESSAGE_MAX] if tried else ""
        current.save(
            update_fields=[
                "api_key_ciphertext",
                "api_key_last4",
                "api_key_set_at",
                "api_key_set_by",
                "connection_checked_at",
                "connection_ok",
                "connection_message",
                "updated_at",
            ]
        )
        data = {"fingerprint": current.api_key_masked, **audit_via(actor)}
        if result is not None:
            data["tried"] = "accepted" if result.ok else result.category
        if rejected:
            data["saved_anyway"] = True
        audit_event_record(
            kind=AuditKind.KEY_REPLACED if replacing else AuditKind.KEY_SET,
            tenant=current,
            actor=audit_actor(actor),
            request=request,
            data=data,
        )
    return current


@dataclass(frozen=True)
class ConnectionResult:
    """What a connection test found: the account and its balance, or why it failed."""

    ok: bool
    message: str
    account_code: str = ""
    balance: Decimal | None = None
    category: str = ""


def _connection_store(*, tenant: Tenant, ok: bool, message: str) -> None:
    now = timezone.now()
    message = message[:CONNECTION_MESSAGE_MAX]
    Tenant.objects.filter(pk=tenant.pk).update(
        connection_checked_at=now, connection_ok=ok, connection_message=message
    )
    tenant.connection_checked_at, tenant.connection_ok, tenant.connection_message = (
        now,
        ok,
        message,
    )


def tenant_connection_mark_failed(*, tenant: Tenant, message: str = "") -> None:
    """Mark the tenant's connection as failing (any service whose Crazytel call got RejectedKey).

    Its admins see it on the tenants page until a connection test passes.
    """
    _connection_store(
        tenant=tenant,
        ok=False,
        message=message or "Crazytel rejected the tenant's API key (401). Set a new key.",
    )


def tenant_connection_test(
    *, actor, tenant: Tenant, request: HttpRequest | None = None
) -> ConnectionResult:
    """Call Crazytel's balance endpoint with the tenant's key; store and record what happened."""
    require_tenant_admin(actor, tenant=tenant)
    if not tenant.has_api_key:
        result = ConnectionResult(
            ok=False, message="No API key is set for this tenant yet.", category="no_key"
        )
    else:
        try:
            balance = crazytel_client_for(tenant).balance()
        except CredentialError as exc:
            result = ConnectionResult(
                ok=False,
                message=f"{exc} Set the API key again.",
                category="credential",
            )
        except ImproperlyConfigured as exc:
            result = ConnectionResult(
                ok=False,
                message=f"The portal cannot read API keys right now: {exc}",
                category="credential",
            )
        except RejectedKey:
            result = ConnectionResult(
                ok=False,
                message="Crazytel rejected the API key (401). Check it and set it again.",
                category="rejected_key",
            )
        except CrazytelError as exc:
            result = ConnectionResult(
                ok=False, message=str(exc.message), category=str(exc.category)
            )
        else:
            result = ConnectionResult(
                ok=True,
                message=f"Connected to account {balance.account_code}.",
                account_code=str(balance.account_code),
                balance=balance.balance,
            )
    _connection_store(tenant=tenant, ok=result.ok, message=result.message)
    data = {"ok": result.ok, **audit_via(actor)}
    if result.ok:
        data["account_code"] = result.account_code
    else:
        data["error_category"] = result.category
    audit_event_record(
        kind=AuditKind.CONNECTION_TESTED,
        tenant=tenant,
        actor=audit_actor(actor),
        request=request,
        data=data,
        status=AuditStatus.SUCCEEDED if result.ok else AuditStatus.FAILED,
        error_message="" if result.ok else result.message,
    )
    return result
