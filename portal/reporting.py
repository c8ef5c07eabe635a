"""What Django's error reports (DEBUG's technical 500 page, the admins' error e-mails) may show.

Django's SafeExceptionReporterFilter hides `sensitive_variables` and `sensitive_post_parameters`
only when DEBUG is off; a 500 page under DEBUG showed the tenant's API key (the `headers` of the
client's `_send`) and a trunk's password. This filter hides them DEBUG or not, hides every local
of any frame in the modules that hold a key or a password, and every local or POST field whose
name says it is a secret, wherever it is.
"""

import re

from django.views.debug import SafeExceptionReporterFilter

# Every frame of these modules holds, or is called with, an API key or a trunk's password.
SECRET_MODULES = (
    "trunks/crazytel/client.py",
    "trunks/tenants/credentials.py",
    "trunks/tenants/upstream.py",
    "trunks/provisioning/services.py",
    "trunks/provisioning/passwords.py",
)
SECRET_NAMES = re.compile(
    r"pass|api_?key|secret|token|headers|signature|cookie|payload|cleaned_data|ciphertext",
    flags=re.IGNORECASE,
)


class SecretsExceptionReporterFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile(
        r"API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|DATABASE_URL|CACHE_URL",
        flags=re.IGNORECASE,
    )

    def is_active(self, request):
        # Also under DEBUG: a developer's 500 page must not show a tenant's key either.
        return True

    def get_post_parameters(self, request):
        params = super().get_post_parameters(request)
        if request is None or not params:
            return params
        params = params.copy()
        for name in params:
            if SECRET_NAMES.search(name):
                params[name] = self.cleansed_substitute
        return params

    def get_traceback_frame_variables(self, request, tb_frame):
        filename = tb_frame.f_code.co_filename.replace("\\", "/")
        if filename.endswith(SECRET_MODULES):
            return [(name, self.cleansed_substitute) for name in tb_frame.f_locals]
        return [
            (name, self.cleansed_substitute if SECRET_NAMES.search(name) else value)
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]
