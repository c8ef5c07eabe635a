"""Tasks that exist only for the worker tests: each run leaves a line a test can count."""

import os
import time

from django.tasks import task


@task
def run_recorded(path: str, key: str) -> int:
    """Append "key pid" to `path` (O_APPEND: whole lines even from several processes)."""
    with open(path, "a") as log:
        log.write(f"{key} {os.getpid()}\n")
    time.sleep(0.02)  # a little work, so that two workers overlap
    return os.getpid()
