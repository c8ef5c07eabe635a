from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "trunks.accounts"
    label = "accounts"
    verbose_name = "Sign-in"

    def ready(self):
        from . import second_factor  # noqa: F401 - connects its user_logged_in receiver
