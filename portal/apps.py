from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The project itself: system checks and login signal handlers."""

    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from portal import auth, checks, throttle  # noqa: F401 (registers the checks and signal receivers)
