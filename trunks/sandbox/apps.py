from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "trunks.sandbox"
    label = "sandbox"
    verbose_name = "Crazytel sandbox"

    def ready(self):
        from . import checks  # noqa: F401 - registers the deploy check
