"""Structured logs: the request id every line carries, and the JSON or console formatter.

The standard library's logging with python-json-logger's formatter, not structlog: Django, axes,
gunicorn and our own modules already log through `logging.getLogger(__name__)`, and a formatter
changes only how those records are written — no second logging API to learn, no wrapper to keep
third-party loggers in line. Structured fields travel as `extra={...}` and become JSON keys.

The request id lives in a context variable, so code that never sees the request (the Crazytel
client, a service, a task) logs and sends the same id the request log and the audit record carry.
"""

import contextvars
import logging
from typing import Any

from pythonjsonlogger.json import JsonFormatter

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("portal_request_id", default="")

LOG_FORMATS = ("json", "console")


def current_request_id() -> str:
    """The id of the request being served in this context, or "" (a command, a task)."""
    return _request_id.get()


def request_id_bind(request_id: str) -> contextvars.Token:
    """Make `request_id` the current one; give the token back to `request_id_reset`."""
    return _request_id.set(request_id)


def request_id_reset(token: contextvars.Token) -> None:
    _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Stamp every record with the current request id (empty outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = current_request_id()
        return True


class PortalJsonFormatter(JsonFormatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, request id, extras."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("timestamp", "time")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        super().__init__(
            "%(levelname)s %(name)s %(message)s %(request_id)s %(process)d", *args, **kwargs
        )

    def add_fields(self, log_data, record, message_dict) -> None:
        super().add_fields(log_data, record, message_dict)
        # Django's own records carry the request object as an extra: its repr is noise.
        log_data.pop("request", None)
        log_data.pop("server_time", None)


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """The LOGGING setting for `log_format` ("json" in production, "console" in development)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "portal.logs.RequestIdFilter"}},
        "formatters": {
            "json": {"()": "portal.logs.PortalJsonFormatter"},
            "console": {
                "format": "%(asctime)s %(levelname)s %(name)s [%(request_id).8s] %(message)s"
            },
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["request_id"],
            },
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Request lines come from portal.request (one per request, structured); Django's own
            # would repeat every 4xx/5xx without the fields.
            "django.request": {"level": "ERROR"},
            # gunicorn's access log is off (portal.request replaces it); its error log goes here.
            "gunicorn.error": {"level": level, "propagate": True},
        },
    }
