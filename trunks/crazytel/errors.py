"""Crazytel's outcomes that are not a success, each with a message fit for a person."""

from __future__ import annotations


class CrazytelError(Exception):
    """Root of every upstream outcome that is not a success.

    `message` is for a person; `status` the HTTP status (None when there was no response);
    `field_errors` maps form field names (or "__all__") to messages; `category` names the class.
    """

    category = "error"
    default_message = "Crazytel could not complete the request."

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        field_errors: dict[str, list[str]] | None = None,
        request_id: str | None = None,
    ):
        self.message = message or self.default_message
        self.status = status
        self.field_errors = {k: list(v) for k, v in (field_errors or {}).items()}
        self.request_id = request_id
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, message={self.message!r})"

    # Exceptions pickle through their args; keep the keyword attributes too.
    def __reduce__(self):
        return (_rebuild_error, (type(self), self.__dict__.copy()))


def _rebuild_error(cls, state):
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


class RejectedKey(CrazytelError):
    category = "rejected_key"
    default_message = "Crazytel rejected this tenant's API key. An admin must check or replace it."


class ValidationFailed(CrazytelError):
    category = "validation"
    default_message = "Crazytel refused the values sent."


class NumberRejected(CrazytelError):
    category = "number_rejected"
    default_message = "Crazytel refused the caller ID or SMS sender number."


class RateLimited(CrazytelError):
    category = "rate_limited"
    default_message = "Crazytel is busy (too many requests). Try again shortly."

    def __init__(self, message: str | None = None, *, retry_after: float | None = None, **kwargs):
        self.retry_after = retry_after
        if message is None and retry_after is not None:
            message = (
                "Crazytel is busy (too many requests). "
                f"Try again in {max(1, round(retry_after))} seconds."
            )
        # status stays None when the portal's own limiter refused before asking Crazytel.
        super().__init__(message, **kwargs)


class UpstreamError(CrazytelError):
    category = "upstream"
    default_message = "Crazytel answered with an error or with something it should not have sent."


class Unreachable(CrazytelError):
    category = "unreachable"
    default_message = "Crazytel could not be reached. Nothing was sent; try again."


class OutcomeUnknown(CrazytelError):
    category = "unknown"
    default_message = (
        "The request reached Crazytel but no answer came back: it may or may not have taken effect."
    )


class TrunkNotFound(CrazytelError):
    """404 on a call about one trunk: Crazytel does not (or no longer) know that trunk id."""

    category = "not_found"
    default_message = "Crazytel no longer has this trunk."
