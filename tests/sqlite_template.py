"""One migrated SQLite database per test run, copied wherever a test needs an empty portal database.

Migrating an empty database applies the project's ~75 migrations, and Django renders the model
state for each: about 4 CPU-seconds in a warm process, 6 in a fresh one (`manage.py migrate`). A run
paid it once in every xdist worker and again in each test that serves the portal from a database of
its own (the gunicorn drop test, the bench smoke run). Now the first process that needs one
migrates the run's template under a file lock, and everyone else copies the file: the same schema,
rows and migration records that `migrate` writes, because `migrate` wrote them.

The template sits beside the test databases (`test_portal-<run>.template.sqlite3`, tests/isolation.py)
and the process that controls the run deletes it at the end. On PostgreSQL there is none: each test
database is created by Django as before, and `migrated_copy` migrates the copy itself.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def template_path(test_database_name: str) -> Path:
    """Where the run's template lives, given the run's SQLite test database name (no worker suffix)."""
    name = Path(test_database_name)
    return name.with_name(name.name.removesuffix(".sqlite3") + ".template.sqlite3")


def template_ensure(template: Path) -> Path:
    """The migrated template, made by whichever process gets here first (the others wait for it)."""
    with open(f"{template}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not template.exists():
            partial = template.with_name(template.name + ".partial")
            partial.unlink(missing_ok=True)
            _migrate_in_this_process(partial)
            partial.rename(
                template
            )  # whole or not at all: a crash leaves no half-migrated template
    return template


def _migrate_in_this_process(path: Path) -> None:
    """`migrate` (and `createcachetable`, as Django's test set-up runs) into `path`, through the
    default connection pointed there for the moment: Django is set up here already, which makes it
    a third cheaper than a `manage.py migrate` of its own."""
    from django.core.management import call_command
    from django.db import connection

    original = connection.settings_dict["NAME"]
    connection.close()
    connection.settings_dict["NAME"] = str(path)
    try:
        call_command("migrate", verbosity=0, interactive=False, run_syncdb=True)
        call_command("createcachetable", verbosity=0)
    finally:
        connection.close()  # the last connection: SQLite folds the WAL into the file
        connection.settings_dict["NAME"] = original


def template_remove(template: Path) -> None:
    for path in (template, Path(f"{template}.lock")):
        path.unlink(missing_ok=True)


def database_from_template(template: Path, database: Path) -> None:
    """`database` becomes a fresh copy of the template (any older file and its WAL are replaced)."""
    for leftover in (Path(f"{database}-wal"), Path(f"{database}-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copyfile(template, database)


def database_remove(database: Path) -> None:
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        path.unlink(missing_ok=True)


def migrated_copy(template: Path | None, database: Path) -> str:
    """An empty, migrated SQLite database at `database` for a process a test starts; returns its
    DATABASE_URL. A copy of the run's template when there is one (SQLite runs); otherwise (a run on
    PostgreSQL, whose test databases are not SQLite files) migrated by `manage.py migrate`."""
    if template is not None:
        database_from_template(template, database)
    else:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": f"sqlite:///{database}"},
            check=True,
            capture_output=True,
            timeout=300,
        )
    return f"sqlite:///{database}"
