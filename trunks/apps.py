from django.apps import AppConfig


class TrunksConfig(AppConfig):
    """Tenants, their Crazytel credentials, trunk creation and the audit log."""

    name = "trunks"
    verbose_name = "Crazytel trunks"
