"""Tenants' Crazytel API keys at rest: Fernet (MultiFernet for rotation), bound to their tenant.

The plaintext never reaches the database: the column holds a Fernet token whose payload names the
tenant it belongs to, so a ciphertext copied into another tenant's row fails to decrypt.
"""

import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class CredentialError(Exception):
    """A stored key cannot be read: wrong encryption key, tampered or misplaced ciphertext."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured(
            "CREDENTIALS_ENCRYPTION_KEYS is not set: the portal cannot store or read API keys."
        )
    try:
        return MultiFernet([Fernet(k.encode()) for k in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "CREDENTIALS_ENCRYPTION_KEYS holds a value that is not a Fernet key "
            "(32 url-safe base64-encoded bytes)."
        ) from exc


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.CREDENTIALS_ENCRYPTION_KEYS))


def api_key_encrypt(*, tenant_id: int, plaintext: str) -> str:
    """The ciphertext to store for `tenant_id`'s key."""
    payload = json.dumps({"tenant": tenant_id, "key": plaintext}).encode()
    return fernet().encrypt(payload).decode()


def api_key_decrypt(*, tenant_id: int, ciphertext: str) -> str:
    """The plaintext key, if `ciphertext` decrypts under a configured key and is `tenant_id`'s."""
    keys = tuple(settings.CREDENTIALS_ENCRYPTION_KEYS)
    if isinstance(tenant_id, int) and isinstance(ciphertext, str):
        return _decrypted(keys, tenant_id, ciphertext)
    return _decrypt(keys, tenant_id, ciphertext)


# A create decrypted its tenant's key on every request (Fernet's HMAC check, AES and the JSON:
# ~0.2 ms of a create's CPU in issue 17's profile). The same ciphertext under the same encryption
# keys always gives the same key, so a success is remembered per process, by (encryption keys,
# tenant, ciphertext): a new key, a rotation or a ciphertext moved to another tenant is looked up
# afresh; a failure is never remembered. The plaintext kept here is no more exposed than before:
# this process holds the encryption keys themselves (its settings), which decrypt every key.
@lru_cache(maxsize=256)
def _decrypted(keys: tuple[str, ...], tenant_id: int, ciphertext: str) -> str:
    return _decrypt(keys, tenant_id, ciphertext)


def _decrypt(keys: tuple[str, ...], tenant_id: int, ciphertext: str) -> str:
    try:
        payload = json.loads(_fernet(keys).decrypt(ciphertext.encode()))
    except (InvalidToken, ValueError, TypeError):
        raise CredentialError(
            "The stored API key cannot be decrypted with the configured encryption keys."
        ) from None
    if not isinstance(payload, dict) or payload.get("tenant") != tenant_id:
        raise CredentialError("The stored API key does not belong to this tenant.")
    return str(payload["key"])


def api_key_reencrypt(*, tenant_id: int, ciphertext: str) -> str:
    """The same key under the newest encryption key (after checking it is this tenant's)."""
    api_key_decrypt(tenant_id=tenant_id, ciphertext=ciphertext)
    return fernet().rotate(ciphertext.encode()).decode()
