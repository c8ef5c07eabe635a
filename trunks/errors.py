"""The portal's domain errors: services raise them, views turn them into messages in one place."""


class PortalError(Exception):
    """Root of every error a service raises on purpose. `message` is written for a person."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        # The form field the error belongs to, when there is one.
        self.field = field


class NotPermitted(PortalError):
    """The actor may not do this. Views answer 404 for another tenant's objects (no existence leak)."""


class NotFound(PortalError):
    """The thing named does not exist (within what the actor may see)."""


class InvalidInput(PortalError):
    """The input breaks a rule the service checks (not caught by the form)."""


class Conflict(PortalError):
    """The action clashes with the current state: a name taken, a member already there, the last admin."""


class CredentialsUnavailable(PortalError):
    """The portal cannot encrypt or decrypt API keys (its encryption keys are missing or wrong)."""


class PortalErrorsMixin:
    """For forms: show a service's PortalError on its field, or above the form. (Django itself ties
    each error to its control with aria-invalid and aria-describedby when the field renders.)"""

    def add_portal_error(self, error: PortalError) -> None:
        self.add_error(error.field if error.field in self.fields else None, error.message)
