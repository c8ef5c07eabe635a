from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "trunks.sandbox"
    label = "sandbox"
    verbose_name = "Crazytel sandbox"
