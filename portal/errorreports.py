"""Error reports to Sentry (optional: only with SENTRY_DSN), scrubbed of every secret on the way.

The SDK is told to leave out what could hold a secret (request bodies, local variables, personal
data); `scrub_event` then removes whatever slipped through anyway — sensitive keys anywhere in the
event, sensitive headers and query parameters, and any string holding one of the portal's own keys
— because an error report is read by more people, for longer, than the portal's database.
"""

import re
from typing import Any

from portal.logs import current_request_id

FILTERED = "[Filtered]"

# Keys whose values are secrets wherever they appear (form fields, headers, extras, breadcrumbs).
SENSITIVE_KEY = re.compile(
    r"pass|secret|token|api[-_]?key|authorization|cookie|session|csrf|signature|credential|"
    r"fernet|ciphertext|dsn",
    re.IGNORECASE,
)


def _secret_values() -> list[str]:
    """The portal's own secrets: never in a report, whatever field they hide in."""
    from django.conf import settings

    values = [
        settings.SECRET_KEY,
        *getattr(settings, "SECRET_KEY_FALLBACKS", []),
        *getattr(settings, "CREDENTIALS_ENCRYPTION_KEYS", []),
        getattr(settings, "METRICS_TOKEN", ""),
    ]
    return [v for v in values if v and len(v) >= 8]


def _scrub(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, dict):
        return {
            k: FILTERED if isinstance(k, str) and SENSITIVE_KEY.search(k) else _scrub(v, secrets)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(v, secrets) for v in value]
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, FILTERED)
        return value
    return value


def _scrub_query_string(query: Any) -> Any:
    if not isinstance(query, str):
        return query
    pairs = []
    for pair in query.split("&"):
        name, sep, _value = pair.partition("=")
        pairs.append(f"{name}{sep}{FILTERED}" if sep and SENSITIVE_KEY.search(name) else pair)
    return "&".join(pairs)


def scrub_event(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """Sentry's before_send: the event without form bodies, local variables, keys or passwords."""
    request = event.get("request")
    if isinstance(request, dict):
        # Form bodies hold trunk passwords and API keys: never sent, whatever their field names.
        if "data" in request:
            request["data"] = FILTERED
        request.pop("cookies", None)
        if "query_string" in request:
            request["query_string"] = _scrub_query_string(request["query_string"])
    for exception in (event.get("exception") or {}).get("values") or []:
        for frame in (exception.get("stacktrace") or {}).get("frames") or []:
            frame.pop("vars", None)
    for thread in (event.get("threads") or {}).get("values") or []:
        for frame in (thread.get("stacktrace") or {}).get("frames") or []:
            frame.pop("vars", None)
    scrubbed = _scrub(event, _secret_values())
    request_id = current_request_id()
    if request_id:
        scrubbed.setdefault("tags", {})["request_id"] = request_id
    return scrubbed


def sentry_init(*, dsn: str, environment: str, release: str = "", **options: Any) -> None:
    """Start reporting to Sentry (settings call this when SENTRY_DSN is set; tests pass a
    transport of their own)."""
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release or None,
        # Exceptions come through the Django integration; logged errors only as breadcrumbs (the
        # request log's ERROR line for a 500 would report every failure twice).
        integrations=[DjangoIntegration(), LoggingIntegration(event_level=None)],
        include_local_variables=False,
        max_request_body_size="never",
        before_send=scrub_event,
        before_send_transaction=scrub_event,
        traces_sample_rate=0.0,
        **options,
    )
