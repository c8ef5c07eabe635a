"""Business actions: the one place the portal changes data or calls Crazytel. Reads: trunks.selectors."""

# =================================================================================================
# Tenants and members
# =================================================================================================
# Who may act: a tenant's admins manage that tenant (its key, connection, members, name, state);
# superusers (portal-wide administrators) manage every tenant and alone create tenants or change a
# tenant's Crazytel base URL (pointing it elsewhere would send the stored key there). Management
# commands act as COMMAND_LINE: whoever can run manage.py already owns the database and the keys.

import hashlib
import logging
import math
import re
import secrets
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import URLValidator, validate_slug
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from . import crazytel
from .audit import audit_attempt_finish, audit_attempt_start, audit_event_record
from .credentials import CredentialError, api_key_encrypt
from .errors import (
    Conflict,
    CredentialsUnavailable,
    InvalidInput,
    NotFound,
    NotPermitted,
    PortalError,
)
from .models import AuditKind, AuditRecord, AuditStatus, Membership, Role, Tenant
from .selectors import role_in, tenant_ready_for_trunks


class _CommandLine:
    """The actor of management commands (recorded in the audit log as "command line")."""

    is_authenticated = False
    is_superuser = True
    pk = None

    def get_username(self) -> str:
        return ""

    def __str__(self) -> str:
        return "command line"


COMMAND_LINE = _CommandLine()

API_KEY_MIN_LENGTH = 8
# The pages that set a key ask for the person's password again unless typed this recently (s).
API_KEY_REAUTH_MAX_AGE = 300
API_KEY_MAX_LENGTH = 256
_API_KEY_RE = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces

CONNECTION_MESSAGE_MAX = 300
# Paths under /tenants/ that a tenant's short name must not shadow.
RESERVED_SLUGS = {"new"}


def _is_superuser(actor) -> bool:
    return actor is COMMAND_LINE or bool(
        getattr(actor, "is_authenticated", False) and getattr(actor, "is_superuser", False)
    )


def _require_superuser(actor, *, action: str) -> None:
    if not _is_superuser(actor):
        raise NotPermitted(f"Only portal administrators may {action}.")


def _require_tenant_admin(actor, *, tenant: Tenant) -> None:
    """The actor administers `tenant` (or is a superuser); NotPermitted otherwise."""
    if _is_superuser(actor):
        return
    if role_in(user=actor, tenant=tenant) != Role.ADMIN:
        raise NotPermitted("You do not administer this tenant.")


def _audit_actor(actor):
    return None if actor is COMMAND_LINE else actor


def _via(actor) -> dict:
    return {"via": "command line"} if actor is COMMAND_LINE else {}


def tenant_name_clean(name: str) -> str:
    name = " ".join((name or "").split())
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
            "Enter a full http:// or https:// URL, or leave it empty for the default.",
            field="base_url",
        ) from None
    return base_url.rstrip("/")


def _check_unique(*, name: str, slug: str, exclude_pk: int | None = None) -> None:
    others = Tenant.objects.exclude(pk=exclude_pk) if exclude_pk else Tenant.objects.all()
    if others.filter(name__iexact=name).exists():
        raise Conflict("Another tenant already has this name.", field="name")
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
    _require_superuser(actor, action="create tenants")
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
                actor=_audit_actor(actor),
                request=request,
                data={
                    "name": name,
                    "slug": slug,
                    "base_url": base_url,
                    "is_active": is_active,
                    **_via(actor),
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
    _require_tenant_admin(actor, tenant=tenant)
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
            _require_superuser(actor, action="change a tenant's Crazytel base URL")
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
            actor=_audit_actor(actor),
            request=request,
            data={"changes": changes, **_via(actor)},
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
def tenant_credential_set(
    *,
    actor,
    tenant: Tenant,
    api_key: str,
    request: HttpRequest | None = None,
) -> Tenant:
    """Store `api_key` encrypted for `tenant`, replacing any earlier one.

    Keeps only the last 4 characters in clear (the fingerprint shown as ••••abcd). The connection
    state goes back to "untested": the new key has not been tried. The views ask for confirmation
    before replacing a key; the audit log records key_set or key_replaced, never the key.
    """
    _require_tenant_admin(actor, tenant=tenant)
    api_key = api_key_clean(api_key)
    with transaction.atomic():
        current = Tenant.objects.select_for_update().get(pk=tenant.pk)
        replacing = current.has_api_key
        try:
            current.api_key_ciphertext = api_key_encrypt(tenant_id=current.pk, plaintext=api_key)
        except ImproperlyConfigured as exc:
            # Missing or malformed CREDENTIALS_ENCRYPTION_KEYS (`manage.py check` says so too).
            raise CredentialsUnavailable(
                f"The portal cannot store API keys right now: {exc} Ask the portal's operator."
            ) from None
        current.api_key_last4 = api_key[-4:]
        current.api_key_set_at = timezone.now()
        current.api_key_set_by = _audit_actor(actor)
        current.connection_checked_at = None
        current.connection_ok = None
        current.connection_message = ""
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
        audit_event_record(
            kind=AuditKind.KEY_REPLACED if replacing else AuditKind.KEY_SET,
            tenant=current,
            actor=_audit_actor(actor),
            request=request,
            data={"fingerprint": current.api_key_masked, **_via(actor)},
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
    _require_tenant_admin(actor, tenant=tenant)
    # Imported here: the client module imports settings-dependent pieces (rate limiter, session).
    from .crazytel import CrazytelError, RejectedKey, crazytel_client_for

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
    data = {"ok": result.ok, **_via(actor)}
    if result.ok:
        data["account_code"] = result.account_code
    else:
        data["error_category"] = result.category
    audit_event_record(
        kind=AuditKind.CONNECTION_TESTED,
        tenant=tenant,
        actor=_audit_actor(actor),
        request=request,
        data=data,
        status=AuditStatus.SUCCEEDED if result.ok else AuditStatus.FAILED,
        error_message="" if result.ok else result.message,
    )
    return result


def password_generate() -> str:
    """A new user's first password: 20 url-safe random characters, shown once."""
    return secrets.token_urlsafe(15)


@dataclass(frozen=True)
class MemberAdded:
    membership: Membership
    user_created: bool
    # The new user's password, for showing once; empty when the user existed or chose it.
    password: str = ""


def _clean_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidInput("Choose a role: staff, manager or admin.", field="role") from None


@sensitive_variables("password", "shown_password")
def member_add(
    *,
    actor,
    tenant: Tenant,
    username: str,
    role: str,
    create_user: bool = False,
    password: str | None = None,
    request: HttpRequest | None = None,
) -> MemberAdded:
    """Give `username` a role in `tenant`. With create_user, a missing user is created.

    A created user gets `password` (checked against the password rules) or a generated one that the
    caller shows once. The password is never stored in clear or recorded.
    """
    _require_tenant_admin(actor, tenant=tenant)
    role = _clean_role(role)
    username = (username or "").strip()
    User = get_user_model()
    if not username:
        raise InvalidInput("Enter a username.", field="username")
    with transaction.atomic():
        user = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
        created = False
        shown_password = ""
        if user is None:
            if not create_user:
                raise NotFound(
                    f"There is no user called “{username}”. Tick “create this user” to add one.",
                    field="username",
                )
            user = User(**{User.USERNAME_FIELD: username})
            try:
                user._meta.get_field(User.USERNAME_FIELD).run_validators(username)
                user.clean_fields(exclude=["password"])
            except ValidationError as exc:
                raise InvalidInput(" ".join(exc.messages), field="username") from None
            if password:
                try:
                    validate_password(password, user=user)
                except ValidationError as exc:
                    raise InvalidInput(" ".join(exc.messages), field="password") from None
            else:
                password = shown_password = password_generate()
            user.set_password(password)
            user.save()
            created = True
        elif Membership.objects.filter(user=user, tenant=tenant).exists():
            raise Conflict(
                f"{user.get_username()} is already a member of {tenant.name}.", field="username"
            )
        membership = Membership.objects.create(user=user, tenant=tenant, role=role)
        audit_event_record(
            kind=AuditKind.MEMBER_ADDED,
            tenant=tenant,
            actor=_audit_actor(actor),
            request=request,
            data={
                "username": user.get_username(),
                "role": role.value,
                "user_created": created,
                **_via(actor),
            },
        )
    return MemberAdded(membership=membership, user_created=created, password=shown_password)


def _other_admins_exist(*, membership: Membership) -> bool:
    return (
        Membership.objects.filter(tenant_id=membership.tenant_id, role=Role.ADMIN)
        .exclude(pk=membership.pk)
        .exists()
    )


def _member_for_update(*, tenant: Tenant, membership_id: int) -> Membership:
    """The member, locked together with the tenant's admins, so that two demotions or removals
    at once cannot both pass the last-admin check. Call inside a transaction."""
    list(
        Membership.objects.select_for_update()
        .filter(tenant=tenant, role=Role.ADMIN)
        .values_list("pk", flat=True)
    )
    try:
        return (
            Membership.objects.select_for_update()
            .select_related("user", "tenant")
            .get(pk=membership_id, tenant=tenant)
        )
    except Membership.DoesNotExist:
        raise NotFound("No such member in this tenant.") from None


def _refuse_removing_last_admin(*, actor, membership: Membership, field: str | None = None):
    """A tenant admin may not leave the tenant without an admin; a superuser may."""
    if (
        membership.role == Role.ADMIN
        and not _is_superuser(actor)
        and not _other_admins_exist(membership=membership)
    ):
        raise Conflict(
            f"{membership.user.get_username()} is this tenant's only admin: make someone else "
            "admin first.",
            field=field,
        )


def member_set_role(
    *,
    actor,
    tenant: Tenant,
    membership_id: int,
    role: str,
    request: HttpRequest | None = None,
) -> Membership:
    """Change a member's role. A tenant admin cannot demote the tenant's last admin."""
    _require_tenant_admin(actor, tenant=tenant)
    role = _clean_role(role)
    with transaction.atomic():
        membership = _member_for_update(tenant=tenant, membership_id=membership_id)
        old = membership.role
        if old == role:
            return membership
        _refuse_removing_last_admin(actor=actor, membership=membership, field="role")
        membership.role = role
        membership.save(update_fields=["role"])
        audit_event_record(
            kind=AuditKind.MEMBER_ROLE_CHANGED,
            tenant=tenant,
            actor=_audit_actor(actor),
            request=request,
            data={
                "username": membership.user.get_username(),
                "role": [old, role.value],
                **_via(actor),
            },
        )
    return membership


def member_remove(
    *,
    actor,
    tenant: Tenant,
    membership_id: int,
    request: HttpRequest | None = None,
) -> None:
    """Remove a member from the tenant (the user account stays). Not the last admin, unless superuser."""
    _require_tenant_admin(actor, tenant=tenant)
    with transaction.atomic():
        membership = _member_for_update(tenant=tenant, membership_id=membership_id)
        _refuse_removing_last_admin(actor=actor, membership=membership)
        username, role = membership.user.get_username(), membership.role
        membership.delete()
        audit_event_record(
            kind=AuditKind.MEMBER_REMOVED,
            tenant=tenant,
            actor=_audit_actor(actor),
            request=request,
            data={"username": username, "role": role, **_via(actor)},
        )


@sensitive_variables("password")
def user_password_set(*, user, password: str) -> None:
    """Set a user's password after checking it against the password rules (command line only)."""
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages), field="password") from None
    user.set_password(password)
    user.save(update_fields=["password"])


# =================================================================================================
# Trunks (issue 5): verified numbers for the form, and creating a SIP trunk.
# =================================================================================================


logger = logging.getLogger(__name__)

# The fields Crazytel's POST /sip-trunks/ takes, in the document's order, with their JSON types.
TRUNK_FIELDS: dict[str, type] = {
    "password": str,
    "caller_id_number": str,
    "enabled": bool,
    "area_code": str,
    "description": str,
    "hide_caller_id": bool,
    "sms_sender": str,
    "softphone_show_balance": bool,
    "softphone_sync_sms": bool,
}
_BOOL_DEFAULTS = {
    "enabled": True,
    "hide_caller_id": False,
    "softphone_show_balance": True,
    "softphone_sync_sms": False,
}
# Optional text fields are left out of the request when empty rather than sent as "".
_OMIT_WHEN_EMPTY = {"area_code", "description", "sms_sender"}

MESSAGE_REJECTED_KEY = "This tenant's Crazytel key was rejected; an admin must replace it."
MESSAGE_UNREACHABLE = "Crazytel could not be reached, so nothing was created; try again."
MESSAGE_UNKNOWN = "We could not confirm whether Crazytel created the trunk; check the account before trying again."
MESSAGE_CREDENTIALS = "This tenant's stored Crazytel key cannot be read; nothing was sent. An admin must set it again."


class TrunkError(PortalError):
    """A trunk action the portal refuses before anything goes upstream. `.message` is for a person."""


def tenant_unavailable_reason(*, tenant: Tenant) -> str:
    """Why trunks cannot be created for `tenant` right now (inactive, no key), or "" when they can."""
    return tenant_ready_for_trunks(tenant).reason


# --- Verified numbers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedNumbers:
    """The tenant's verified numbers, or why they could not be had."""

    numbers: tuple[crazytel.VerifiedNumber, ...] = ()
    error: str = ""
    category: str = ""
    fetched_at: Any = None
    from_cache: bool = False

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def mobiles(self) -> tuple[crazytel.VerifiedNumber, ...]:
        return tuple(n for n in self.numbers if n.number.startswith("614"))

    def contains(self, number: str) -> bool:
        return any(n.number == number for n in self.numbers)


def verified_numbers_cache_key(*, tenant: Tenant) -> str:
    """Per tenant, and per key and base URL, so a replaced key never sees the old account's numbers.

    Built from when the key was set and the URL, never from the key itself.
    """
    stamp = tenant.api_key_set_at.isoformat() if tenant.api_key_set_at else "none"
    fingerprint = hashlib.sha256(f"{stamp}|{tenant.effective_base_url}".encode()).hexdigest()[:16]
    return f"trunks:verified-numbers:v1:{tenant.pk}:{fingerprint}"


def verified_numbers_forget(*, tenant: Tenant) -> None:
    cache.delete(verified_numbers_cache_key(tenant=tenant))


def _numbers_error_message(error: crazytel.CrazytelError) -> str:
    if isinstance(error, crazytel.RejectedKey):
        return MESSAGE_REJECTED_KEY
    if isinstance(error, crazytel.Unreachable):
        return "Crazytel could not be reached to list this tenant's verified numbers."
    if isinstance(error, crazytel.RateLimited):
        return f"Crazytel is busy; try again in {_retry_seconds(error)} seconds."
    return "Crazytel's list of verified numbers could not be read. " + (error.message or "")


def verified_numbers_get(*, tenant: Tenant, refresh: bool = False) -> VerifiedNumbers:
    """The tenant's verified numbers, from the shared cache unless `refresh` or expired.

    Failures are not cached: the next look asks Crazytel again. A rejected key flags the tenant.
    """
    key = verified_numbers_cache_key(tenant=tenant)
    lock = f"{key}:fetching"
    token = secrets.token_hex(8)
    held = False
    if not refresh:
        # Single flight: on a cold cache one process asks Crazytel while the others wait for
        # its answer in the cache (up to NUMBERS_WAIT seconds, then they ask themselves).
        deadline = time.monotonic() + NUMBERS_WAIT
        while True:
            cached = cache.get(key)
            if cached is not None:
                return _numbers_from_cache(cached)
            held = cache.add(lock, token, NUMBERS_LOCK_TTL)
            if held or time.monotonic() >= deadline:
                break
            time.sleep(NUMBERS_POLL)
        if held and (cached := cache.get(key)) is not None:
            # Filled between our look and taking the lock.
            _numbers_lock_release(lock, token)
            return _numbers_from_cache(cached)
    try:
        return _numbers_fetch(tenant=tenant, key=key)
    finally:
        if held:
            _numbers_lock_release(lock, token)


# How long a process waits for another's fetch of the same numbers, how often it looks, and the
# longest a fetch holds the lock (a crashed process's lock lapses after this).
NUMBERS_WAIT = 5.0
NUMBERS_POLL = 0.05
NUMBERS_LOCK_TTL = 30


def _numbers_from_cache(cached: dict) -> VerifiedNumbers:
    return VerifiedNumbers(
        numbers=tuple(crazytel.VerifiedNumber(**n) for n in cached["numbers"]),
        fetched_at=cached["fetched_at"],
        from_cache=True,
    )


def _numbers_lock_release(lock: str, token: str) -> None:
    # Only our own lock (one that lapsed may have been taken by another process since).
    if cache.get(lock) == token:
        cache.delete(lock)


def _numbers_fetch(*, tenant: Tenant, key: str) -> VerifiedNumbers:
    try:
        numbers = crazytel.crazytel_client_for(tenant).verified_numbers()
    except CredentialError:
        return VerifiedNumbers(error=MESSAGE_CREDENTIALS, category="credentials")
    except crazytel.CrazytelError as error:
        if isinstance(error, crazytel.RejectedKey):
            tenant_connection_mark_failed(
                tenant=tenant,
                message="Crazytel rejected the API key (401) listing numbers. Set a new key.",
            )
        return VerifiedNumbers(error=_numbers_error_message(error), category=error.category)
    now = timezone.now()
    cache.set(
        key,
        {"numbers": [{"number": n.number, "label": n.label} for n in numbers], "fetched_at": now},
        settings.CRAZYTEL_NUMBERS_CACHE_TTL,
    )
    return VerifiedNumbers(numbers=tuple(numbers), fetched_at=now)


# --- Creating a trunk ------------------------------------------------------------------------------


@dataclass
class TrunkCreateResult:
    """What became of one submission. `password` is set only on the response that created the trunk,
    to show it once; it is never stored anywhere."""

    record: AuditRecord
    status: str
    message: str = ""
    field_errors: dict[str, list[str]] = field(default_factory=dict)
    category: str = ""
    retry_after: int | None = None
    username: str = ""
    trunk_id: str = ""
    password: str = field(default="", repr=False)
    # True when this is an earlier submission of the same form, found by its token.
    duplicate: bool = False

    @property
    def succeeded(self) -> bool:
        return self.status == AuditStatus.SUCCEEDED

    @property
    def unknown(self) -> bool:
        return self.status == AuditStatus.UNKNOWN

    @property
    def pending(self) -> bool:
        return self.status == AuditStatus.PENDING

    @property
    def settings(self) -> dict[str, Any]:
        """The values sent to Crazytel (never the password)."""
        return self.record.data


@sensitive_variables("data", "payload")
def trunk_payload_build(*, data: dict[str, Any]) -> dict[str, Any]:
    """The JSON body for POST /sip-trunks/: exactly the documented fields, with their types."""
    payload: dict[str, Any] = {}
    for name, kind in TRUNK_FIELDS.items():
        value = data.get(name)
        if kind is bool:
            payload[name] = bool(value) if value is not None else _BOOL_DEFAULTS[name]
        else:
            text = "" if value is None else str(value)
            if name in _OMIT_WHEN_EMPTY and not text:
                continue
            payload[name] = text
    return payload


def _retry_seconds(error: crazytel.CrazytelError) -> int:
    retry_after = getattr(error, "retry_after", None)
    if retry_after is None or retry_after <= 0:
        # Crazytel's limit is per minute: a minute always clears it.
        return 60
    return max(1, math.ceil(retry_after))


def _scrub(value: Any, secret: str) -> Any:
    """`value` with every occurrence of `secret` masked (upstream messages may echo the input)."""
    if not secret:
        return value
    if isinstance(value, str):
        return value.replace(secret, "••••••••")
    if isinstance(value, dict):
        return {k: _scrub(v, secret) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v, secret) for v in value]
    return value


def trunk_attempt_result(*, record: AuditRecord, duplicate: bool) -> TrunkCreateResult:
    """The result recorded for an attempt (an earlier submission of the same form)."""
    message = record.error_message
    if record.status == AuditStatus.PENDING:
        message = (
            "This form was already submitted and Crazytel's answer is still awaited. "
            "Wait a moment, then reload to see the result."
        )
    elif record.status == AuditStatus.SUCCEEDED:
        message = (
            f"This form was already submitted: trunk {record.trunk_username} was created. "
            "Its password was shown once, on that submission's page."
        )
    elif record.status == AuditStatus.UNKNOWN:
        message = message or MESSAGE_UNKNOWN
    return TrunkCreateResult(
        record=record,
        status=record.status,
        message=message,
        category=record.error_category,
        username=record.trunk_username,
        trunk_id=record.trunk_id,
        duplicate=duplicate,
    )


@sensitive_variables("data", "payload", "password")
def trunk_create(
    *,
    actor,
    tenant: Tenant,
    data: dict[str, Any],
    request: HttpRequest | None,
    submission_token: str,
    retry_of: AuditRecord | None = None,
) -> TrunkCreateResult:
    """Create a SIP trunk on `tenant`'s Crazytel account, recording the attempt before and after.

    A `submission_token` already used returns that submission's result without calling Crazytel
    (the database's unique constraint decides, so two processes racing cannot both pass).
    `retry_of` is an attempt whose outcome was unknown; the new attempt points at it.
    Raises TrunkError when the tenant cannot be used (nothing is recorded or sent).
    """
    reason = tenant_unavailable_reason(tenant=tenant)
    if reason:
        raise TrunkError(reason)
    if retry_of is not None and (
        retry_of.tenant_id != tenant.pk or retry_of.status != AuditStatus.UNKNOWN
    ):
        raise TrunkError("Only an attempt of this tenant whose outcome is unknown can be retried.")

    payload = trunk_payload_build(data=data)
    password = payload["password"]
    recorded = {k: v for k, v in payload.items() if k != "password"}
    if retry_of is not None:
        recorded["retry_of"] = str(retry_of.uuid)

    try:
        record = audit_attempt_start(
            tenant=tenant,
            actor=actor,
            request=request,
            data=recorded,
            submission_token=submission_token,
            related=retry_of,
        )
    except IntegrityError:
        first = AuditRecord.objects.filter(submission_token=submission_token).first()
        if first is None:  # not a token clash: a real integrity problem
            raise
        return trunk_attempt_result(record=first, duplicate=True)

    try:
        return _trunk_create_call(record=record, tenant=tenant, payload=payload, password=password)
    except BaseException:
        # A bug or an interrupted worker must not leave the attempt pending forever: the request
        # may have reached Crazytel, so the honest status is unknown.
        logger.exception("trunk_create failed unexpectedly (attempt %s)", record.uuid)
        fresh = AuditRecord.objects.filter(pk=record.pk, status=AuditStatus.PENDING).exists()
        if fresh:
            audit_attempt_finish(
                record=record,
                status=AuditStatus.UNKNOWN,
                error_category="internal",
                error_message=MESSAGE_UNKNOWN,
            )
        raise


@sensitive_variables("payload", "password")
def _trunk_create_call(
    *, record: AuditRecord, tenant: Tenant, payload: dict[str, Any], password: str
) -> TrunkCreateResult:
    # Its frame sees `password` (a closure variable): hidden from error reports too.
    @sensitive_variables("password")
    def finish(status, *, message="", category="", upstream_status=None, field_errors=None, **kw):
        message = _scrub(message, password)
        final = audit_attempt_finish(
            record=record,
            status=status,
            upstream_status=upstream_status,
            error_category=category,
            error_message=message,
            **kw,
        )
        return final, message, _scrub(field_errors or {}, password)

    try:
        created = crazytel.crazytel_client_for(tenant).create_sip_trunk(payload)
    except CredentialError:
        final, message, _ = finish(
            AuditStatus.FAILED, message=MESSAGE_CREDENTIALS, category="credentials"
        )
        return TrunkCreateResult(
            record=final, status=final.status, message=message, category="credentials"
        )
    except crazytel.CrazytelError as error:
        return _trunk_create_failure(error=error, tenant=tenant, payload=payload, finish=finish)

    response = _scrub(dict(created.response or {}), password)
    final, _, _ = finish(
        AuditStatus.SUCCEEDED,
        upstream_status=200,
        trunk_username=created.username,
        trunk_id=str(created.trunk_id or "")[:64],
        response=response,
    )
    return TrunkCreateResult(
        record=final,
        status=final.status,
        username=created.username,
        trunk_id=final.trunk_id,
        password=password,
    )


@sensitive_variables("payload")
def _trunk_create_failure(*, error, tenant, payload, finish) -> TrunkCreateResult:
    """Map one upstream error to its audit status and what the form shows."""
    status = AuditStatus.FAILED
    field_errors: dict[str, list[str]] = {}
    retry_after = None
    detail = (error.message or "").strip()

    if isinstance(error, crazytel.ValidationFailed):
        field_errors = {k: list(v) for k, v in (error.field_errors or {}).items()}
        # The contract's 422 is about the password; say so there unless Crazytel named a field.
        if not set(field_errors) & set(TRUNK_FIELDS):
            field_errors.setdefault("password", []).append(
                "Crazytel refused this password: use at least 8 characters with an upper-case "
                "letter, a lower-case letter and a digit."
            )
        message = "Crazytel refused the values: see the fields marked below. Nothing was created."
    elif isinstance(error, crazytel.NumberRejected):
        field_errors = {
            k: list(v)
            for k, v in (error.field_errors or {}).items()
            if k in ("caller_id_number", "sms_sender")
        }
        if not field_errors:
            field_errors["caller_id_number"] = [
                "Crazytel refused the caller ID or SMS sender as not verified on this account."
                + (f" ({detail})" if detail else "")
            ]
        message = "Crazytel refused a number: see the fields marked below. Nothing was created."
        # The account's verified numbers changed under us: read them afresh next time.
        verified_numbers_forget(tenant=tenant)
    elif isinstance(error, crazytel.RejectedKey):
        message = MESSAGE_REJECTED_KEY
        tenant_connection_mark_failed(
            tenant=tenant,
            message="Crazytel rejected the API key (401) creating a trunk. Set a new key.",
        )
        verified_numbers_forget(tenant=tenant)
    elif isinstance(error, crazytel.RateLimited):
        retry_after = _retry_seconds(error)
        if error.status is None and detail:
            # Held back by the portal's own limiter (budget spent, a 429's pause, or the circuit
            # breaker after repeated failures): nothing was sent, and its message says which.
            message = detail
        else:
            message = f"Crazytel is busy; try again in {retry_after} seconds. Nothing was created."
    elif isinstance(error, crazytel.Unreachable):
        message = MESSAGE_UNREACHABLE
    elif (
        isinstance(error, crazytel.UpstreamError)
        and error.status is not None
        and 400 <= error.status < 500
    ):
        # A refusal the contract does not list (403, 404, 409...): Crazytel answered "no".
        message = f"Crazytel refused the request (HTTP {error.status}); nothing was created."
        if detail:
            message += f" It said: {detail}"
    else:
        # UpstreamError (5xx, HTML page, malformed 2xx), OutcomeUnknown, anything unforeseen.
        status = AuditStatus.UNKNOWN
        message = MESSAGE_UNKNOWN
        if detail:
            message += f" Details: {detail}"

    all_messages = [m for msgs in field_errors.values() for m in msgs]
    recorded_message = message if not all_messages else f"{message} " + " ".join(all_messages)
    final, _, field_errors = finish(
        status,
        message=recorded_message,
        category=error.category,
        upstream_status=error.status,
        field_errors=field_errors,
    )
    shown = _scrub(message, payload.get("password", ""))
    return TrunkCreateResult(
        record=final,
        status=final.status,
        message=shown,
        field_errors=field_errors,
        category=error.category,
        retry_after=retry_after,
    )


# =================================================================================================
# Unknown outcomes resolved (issue 8): a manager records what Crazytel's account shows.
# =================================================================================================

from .models import ROLE_RANK  # noqa: E402

# ASCII digits only (\d would take any script's digits) and no trailing newline ($ would).
TRUNK_USERNAME_RE = re.compile(r"\ACT[0-9]{6}\Z")
RESOLUTION_NOTE_MAX = 1000


def audit_resolution_of(*, record: AuditRecord) -> AuditRecord | None:
    """The event that resolved `record`'s unknown outcome, if one did."""
    return (
        AuditRecord.objects.filter(related=record, kind=AuditKind.OUTCOME_RESOLVED)
        .order_by("started_at", "id")
        .first()
    )


def _require_tenant_manager(actor, *, tenant: Tenant) -> None:
    if _is_superuser(actor):
        return
    role = role_in(user=actor, tenant=tenant)
    if role is None or ROLE_RANK[Role(role)] < ROLE_RANK[Role.MANAGER]:
        raise NotPermitted("Only this tenant's managers and admins may resolve its attempts.")


def audit_unknown_resolve(
    *,
    actor,
    record: AuditRecord,
    created: bool,
    username: str | None,
    note: str,
    request: HttpRequest | None = None,
) -> AuditRecord:
    """Record what became of an attempt whose outcome was unknown: the trunk was created (as
    `username`, CT + 6 digits) or it was not. A new OUTCOME_RESOLVED event points at the attempt;
    the attempt itself never changes (the log is append-only). Managers and admins of the
    attempt's tenant only; an attempt is resolved once.
    """
    _require_tenant_manager(actor, tenant=record.tenant)
    if record.kind != AuditKind.TRUNK_CREATE or record.status != AuditStatus.UNKNOWN:
        raise InvalidInput("Only a trunk attempt whose outcome is unknown can be resolved.")
    username = (username or "").strip().upper() if created else ""
    if created and not TRUNK_USERNAME_RE.match(username):
        raise InvalidInput(
            "Enter the trunk's username as Crazytel shows it: CT and 6 digits, e.g. CT123456.",
            field="username",
        )
    note = (note or "").replace("\x00", "").strip()
    if not note:
        raise InvalidInput(
            "Say how you checked (e.g. “seen in the Crazytel account on 3 Dec”).", field="note"
        )
    if len(note) > RESOLUTION_NOTE_MAX:
        raise InvalidInput(
            f"Keep the note to {RESOLUTION_NOTE_MAX} characters at most.", field="note"
        )
    with transaction.atomic():
        # The tenant row lock (also taken to seal any record) queues two resolvers one behind the
        # other, so the second sees the first's resolution and is refused.
        Tenant.objects.select_for_update().only("id").get(pk=record.tenant_id)
        earlier = audit_resolution_of(record=record)
        if earlier is not None:
            outcome = (
                f"created ({earlier.trunk_username})"
                if earlier.data.get("created")
                else "not created"
            )
            who = earlier.actor_username or "someone"
            raise Conflict(
                f"This attempt was already resolved as {outcome} by {who} on "
                f"{timezone.localtime(earlier.started_at):%d %b %Y %H:%M}. "
                "A resolution is final; it cannot be changed."
            )
        return audit_event_record(
            kind=AuditKind.OUTCOME_RESOLVED,
            tenant=record.tenant,
            actor=_audit_actor(actor),
            request=request,
            data={
                "attempt": str(record.uuid),
                "created": bool(created),
                "trunk_username": username,
                "note": note,
            },
            related=record,
            trunk_username=username,
        )
