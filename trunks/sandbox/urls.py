"""The sandbox's URLs, mounted under /sandbox/ only when SANDBOX_ENABLED is on."""

app_name = "sandbox"
urlpatterns: list = []
