"""`check --deploy` refuses a production deployment with the sandbox switched on."""

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def sandbox_disabled_in_production(app_configs, **kwargs):
    if getattr(settings, "SANDBOX_ENABLED", False) and not settings.DEBUG:
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
