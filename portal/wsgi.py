"""WSGI entry point (gunicorn portal.wsgi).

Django runs the system checks for runserver and migrate but not for a WSGI server: run them here,
so a misconfigured production server (the sandbox on without DEBUG, no encryption keys) refuses to
start instead of serving. A failing check raises SystemCheckError and the worker does not boot.
"""

import os

from django.core.management import call_command
from django.core.wsgi import get_wsgi_application

from portal.runtime import process_settle

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
application = get_wsgi_application()
call_command("check")
# What the worker serves with is loaded: out of the garbage collector's way (portal/runtime.py).
process_settle()
