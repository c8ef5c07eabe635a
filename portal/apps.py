from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The project itself: system checks and login signal handlers."""

    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        # Registers the checks and signal receivers (user_cache's in every process that writes users).
        from portal import auth, checks, throttle, user_cache  # noqa: F401
