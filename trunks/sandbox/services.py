"""Sandbox accounts and their faults: set up from code, tests, `make run` and the admin's actions."""

import random
import secrets
import time

from django.db import IntegrityError, transaction
from django.db.models import F

from .models import FaultScope, SandboxAccount, SandboxRateWindow, SandboxTrunk

# Area-code prefixes of Australian landlines (NSW/ACT, VIC/TAS, QLD, SA/WA/NT) and their places.
_LANDLINES = [
    ("612", "Sydney office"),
    ("613", "Melbourne support"),
    ("617", "Brisbane sales"),
    ("618", "Perth warehouse"),
    ("612", "Canberra reception"),
]
_MOBILES = ["Ops mobile", "On-call mobile", "Sales mobile"]
# The rate limit's clock (tests pin it to keep a burst inside one minute).
_clock = time.time


def sandbox_numbers_generate(*, seed: str) -> list[dict]:
    """A realistic, repeatable mix of landlines (612/613/617/618) and 614 mobiles with labels."""
    rng = random.Random(seed)  # noqa: S311 - demo data, not a secret
    numbers = []
    for prefix, label in _LANDLINES:
        numbers.append({"number": f"{prefix}{rng.randint(80000000, 99999999)}", "label": label})
    for label in _MOBILES:
        numbers.append({"number": f"614{rng.randint(10000000, 99999999)}", "label": label})
    # One unlabelled number of each kind: Crazytel does not always give a label.
    numbers.append({"number": f"612{rng.randint(80000000, 99999999)}", "label": ""})
    numbers.append({"number": f"614{rng.randint(10000000, 99999999)}", "label": ""})
    return numbers


def sandbox_account_ensure(*, name: str, api_key: str | None = None) -> SandboxAccount:
    """The account called `name`, created with numbers and a balance if missing (idempotent).

    With `api_key`, the account answers to that key (set on an existing account too).
    """
    if api_key and SandboxAccount.objects.filter(api_key=api_key).exclude(name=name).exists():
        raise ValueError("That API key already belongs to another sandbox account.")
    account = SandboxAccount.objects.filter(name=name).first()
    if account is None:
        account = SandboxAccount(name=name, verified_numbers=sandbox_numbers_generate(seed=name))
        if api_key:
            account.api_key = api_key
        try:
            with transaction.atomic():
                account.save()
        except IntegrityError:
            # Created meanwhile by another process (or the key belongs to another account).
            account = SandboxAccount.objects.get(name=name)
    if api_key and account.api_key != api_key:
        account.api_key = api_key
        account.save(update_fields=["api_key", "updated_at"])
    if not account.verified_numbers:
        account.verified_numbers = sandbox_numbers_generate(seed=name)
        account.save(update_fields=["verified_numbers", "updated_at"])
    return account


def sandbox_faults_set(*, account: SandboxAccount, **faults) -> SandboxAccount:
    """Set some faults (field=value, see SandboxAccount.FAULT_FIELDS), leaving the others."""
    unknown = set(faults) - set(SandboxAccount.FAULT_FIELDS)
    if unknown:
        raise ValueError(f"Not sandbox fault settings: {', '.join(sorted(unknown))}")
    for name, value in faults.items():
        setattr(account, name, value)
    account.full_clean()
    account.save(update_fields=[*faults, "updated_at"])
    return account


def sandbox_faults_clear(*, account: SandboxAccount) -> SandboxAccount:
    """Back to a well-behaved Crazytel."""
    defaults = {
        f.name: f.get_default()
        for f in SandboxAccount._meta.get_fields()
        if f.name in SandboxAccount.FAULT_FIELDS
    }
    return sandbox_faults_set(account=account, **defaults)


def sandbox_fault_consume(*, account: SandboxAccount, kind: str) -> bool:
    """Whether the faults apply to this request (`kind`: "create" or "read"), counting down
    `fault_remaining` atomically.

    The fault settings are read again under the row lock that counts down, and copied onto
    `account`: a request loads its account before this, and faults changed in between (the admin,
    a test setting the next fault) must not be answered with the old settings and the new count.
    """
    with transaction.atomic():
        current = (
            SandboxAccount.objects.select_for_update()
            .filter(pk=account.pk)
            .values(*SandboxAccount.FAULT_FIELDS)
            .first()
        )
        if current is None:
            return False
        for name, value in current.items():
            setattr(account, name, value)
        scope = account.fault_scope
        in_scope = (
            scope == FaultScope.ALL
            or (scope == FaultScope.CREATE and kind == "create")
            or (scope == FaultScope.READS and kind == "read")
        )
        if not account.has_faults or not in_scope:
            return False
        if account.fault_remaining is None:
            return True
        if account.fault_remaining <= 0:
            return False
        SandboxAccount.objects.filter(pk=account.pk).update(
            fault_remaining=F("fault_remaining") - 1
        )
        account.fault_remaining -= 1
    return True


def sandbox_rate_limit_hit(*, account: SandboxAccount, now: float | None = None) -> float | None:
    """Count one request; None when within the limit, else the seconds until the next window."""
    limit = account.rate_limit_per_minute
    if not limit:
        return None
    now = _clock() if now is None else now
    window = int(now // 60)
    SandboxRateWindow.objects.bulk_create(
        [SandboxRateWindow(account=account, window=window, count=0)], ignore_conflicts=True
    )
    SandboxRateWindow.objects.filter(account=account, window=window).update(count=F("count") + 1)
    count = (
        SandboxRateWindow.objects.filter(account=account, window=window)
        .values_list("count", flat=True)
        .first()
    )
    if secrets.randbelow(50) == 0:
        SandboxRateWindow.objects.filter(account=account, window__lt=window - 2).delete()
    if count is not None and count > limit:
        return (window + 1) * 60 - now
    return None


def sandbox_username_new() -> str:
    """CT + 6 random digits, not yet taken."""
    for _ in range(50):
        username = f"CT{secrets.randbelow(10**6):06d}"
        if not SandboxTrunk.objects.filter(username=username).exists():
            return username
    raise RuntimeError("The sandbox could not find a free trunk username.")
