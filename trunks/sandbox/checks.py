"""`check` refuses to start the portal with the sandbox switched on and DEBUG off.

Registered without `deploy=True`: `check` runs it, and so do runserver, migrate and the WSGI
start-up (portal.wsgi runs the checks), so a production server with the sandbox never serves.
"""

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security)
def sandbox_disabled_in_production(app_configs, **kwargs):
    if (
        getattr(settings, "SANDBOX_ENABLED", False)
        and not settings.DEBUG
        and not getattr(settings, "SANDBOX_ALLOW_WITHOUT_DEBUG", False)
    ):
        return [
            Error(
                "SANDBOX_ENABLED is on while DEBUG is off.",
                hint=(
                    "The Crazytel sandbox answers anyone who knows a sandbox key and creates fake "
                    "trunks; it is for demos and tests only. Set SANDBOX_ENABLED=false in production."
                ),
                id="sandbox.E001",
            )
        ]
    return []
