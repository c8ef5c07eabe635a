"""Shared fixtures. Three people and two tenants, named and reused (healthchecks' hc/test.py)."""

import os
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from trunks.models import Role

from . import sqlite_template
from .factories import DEFAULT_PASSWORD, TenantFactory, UserFactory

# Fixtures for the trunk-creation tests (a keyed tenant, Crazytel mocked at the HTTP edge).
pytest_plugins = ["tests.trunk_fixtures"]

# Hypothesis: `make test` runs each property on 20 examples (every run draws new ones);
# HYPOTHESIS_PROFILE=thorough runs 200, e.g. before a release or after touching input handling.
hypothesis_settings.register_profile("suite", max_examples=20)
hypothesis_settings.register_profile("thorough", max_examples=200)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))


# The run's migrated SQLite template (tests/sqlite_template.py); None when the tests run on PostgreSQL.
SQLITE_TEMPLATE = pytest.StashKey[Path | None]()


def pytest_configure(config):
    """Each pytest-xdist worker keeps to its own cache keys and its own SQLite file (tests/isolation.py)."""
    from django.conf import settings

    from .isolation import isolate_cache, sqlite_test_database_on_file

    isolate_cache(settings.CACHES)
    name = sqlite_test_database_on_file(settings.DATABASES, config)
    config.stash[SQLITE_TEMPLATE] = sqlite_template.template_path(name) if name else None


def pytest_unconfigure(config):
    """The process that controls the run (not an xdist worker) deletes the run's template."""
    template = config.stash.get(SQLITE_TEMPLATE, None)
    if template is not None and not hasattr(config, "workerinput"):
        sqlite_template.template_remove(template)


def _template_in_use(config) -> bool:
    """Whether this run's test databases start as copies of the template: on SQLite, unless asked
    to reuse a kept database, to create it afresh, or to build it without migrations."""
    return config.stash[SQLITE_TEMPLATE] is not None and not (
        config.getvalue("reuse_db")
        or config.getvalue("create_db")
        or config.getvalue("nomigrations")
    )


@pytest.fixture(scope="session")
def django_db_keepdb(request, django_db_modify_db_settings, django_db_blocker):
    """pytest-django asks this whether to use the test database as it finds it ("keep" it). On
    SQLite this worker's test database is first made a copy of the run's migrated template
    (tests/sqlite_template.py), to be used as it is: Django's set-up then finds every migration
    applied instead of applying them again. django_db_setup below deletes it at the end."""
    if not _template_in_use(request.config):
        return request.config.getvalue("reuse_db")
    from django.db import connection

    template = request.config.stash[SQLITE_TEMPLATE]
    with django_db_blocker.unblock():
        sqlite_template.template_ensure(template)
    # The worker's name, with the suffix pytest-django added (django_db_modify_db_settings).
    database = Path(connection.settings_dict["TEST"]["NAME"])
    sqlite_template.database_from_template(template, database)
    return True


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, request):
    """pytest-django's set-up; a test database copied from the template is deleted at the end (a
    kept database is not deleted by pytest-django)."""
    yield
    if _template_in_use(request.config):
        from django.db import connections

        # The copy's own name (not the connection's NAME: with no test using the database, none
        # was set up, and NAME is still the developer's database).
        database = Path(connections["default"].settings_dict["TEST"]["NAME"])
        connections.close_all()
        sqlite_template.database_remove(database)


@pytest.fixture
def migrated_sqlite(request, django_db_setup):
    """`migrated_sqlite(path)` makes an empty, migrated SQLite database at `path` for a process the
    test starts (a copy of the run's template where there is one) and returns its DATABASE_URL."""
    template = request.config.stash[SQLITE_TEMPLATE] if _template_in_use(request.config) else None
    return lambda path: sqlite_template.migrated_copy(template, path)


def pytest_sessionstart(session):
    """Every run writes its own screenshots: none left over from an older run can mislead. Done
    once, by the process that runs the session (not by each xdist worker, which would delete the
    pictures another worker has just taken)."""
    if hasattr(session.config, "workerinput"):
        return
    from .e2e.browser import AXE_REPORT, SCREENSHOTS

    for png in SCREENSHOTS.glob("*.png"):
        png.unlink()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    AXE_REPORT.write_text("axe-core findings below 'serious' on the pages the journeys visit\n")


def pytest_xdist_make_scheduler(config, log):
    """`--dist loadgroup` shares the suite out as tests/scheduling.py says."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from .scheduling import CostGroupScheduling

    return CostGroupScheduling(config, log)


@pytest.fixture(scope="session", autouse=True)
def _rate_limiter_keys_per_worker():
    from django.core.cache import cache

    from .isolation import rate_limiter_prefix_isolate

    rate_limiter_prefix_isolate()
    yield
    cache.clear()  # this worker's keys only (tests/isolation.py): nothing left in a shared Redis


@pytest.fixture(scope="session", autouse=True)
def _other_backends_ended_before_the_database_is_dropped(django_db_setup, django_db_blocker):
    """On PostgreSQL the portal keeps its connections (CONN_MAX_AGE, issue 17): a gunicorn or a
    worker a test left running would hold one open for good, and Django's DROP DATABASE at the end
    of the session would fail. Set up after the test database, so ended before it is dropped."""
    yield
    from .processes import other_backends_end

    with django_db_blocker.unblock():
        other_backends_end()


@pytest.fixture(scope="session", autouse=True)
def _flush_puts_content_types_back():
    """Transactional tests' flushes put content types and permissions back from a copy instead of
    creating them again (tests/post_flush.py)."""
    from .post_flush import ContentTypesRestorer

    restorer = ContentTypesRestorer()
    restorer.install()
    yield
    restorer.uninstall()


@pytest.fixture
def password():
    return DEFAULT_PASSWORD


@pytest.fixture
def tenant_a(db):
    return TenantFactory(name="Alpha Telecom", slug="alpha")


@pytest.fixture
def tenant_b(db):
    return TenantFactory(name="Bravo Networks", slug="bravo")


@pytest.fixture
def alice(tenant_a):
    """Staff in tenant A."""
    return UserFactory(username="alice", member_of=tenant_a, member_of__role=Role.STAFF)


@pytest.fixture
def mallory(tenant_a):
    """Manager in tenant A."""
    return UserFactory(username="mallory", member_of=tenant_a, member_of__role=Role.MANAGER)


@pytest.fixture
def adam(tenant_a):
    """Admin in tenant A."""
    return UserFactory(username="adam", member_of=tenant_a, member_of__role=Role.ADMIN)


@pytest.fixture
def bob(tenant_b):
    """Staff in tenant B: must never see anything of tenant A."""
    return UserFactory(username="bob", member_of=tenant_b, member_of__role=Role.STAFF)


@pytest.fixture
def charlie(db):
    """A logged-in user with no tenant at all."""
    return UserFactory(username="charlie")


@pytest.fixture
def root(db):
    """A portal-wide administrator (Django superuser)."""
    return UserFactory(username="root", superuser=True)


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    """Every test hashes portal passwords with MD5: fast. (Production keeps Django's PBKDF2.)"""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- The Crazytel sandbox (issue 3) ------------------------------------------------------------

SANDBOX_KEY = "ctsbx_test_alpha_0123456789abcdef"


# The made-up upstream hosts the tests point tenants at (live servers on this machine, *.test names).
# Tests of the allow-list itself set their own (tests/tenants/test_upstream_allowlist.py).
TEST_UPSTREAM_HOSTS = ["localhost", "127.0.0.1", "testserver", ".test", ".example", ".example.com"]


@pytest.fixture(autouse=True)
def upstream_hosts_for_tests(settings):
    settings.CRAZYTEL_UPSTREAM_HOSTS = [*TEST_UPSTREAM_HOSTS, "crazytel.io", "evil"]
    settings.CRAZYTEL_UPSTREAM_HTTP_ALLOWED = True


@pytest.fixture
def sandbox_account(db):
    """A sandbox Crazytel account (key SANDBOX_KEY) with a mix of landlines and 614 mobiles."""
    from trunks.sandbox.services import sandbox_account_ensure

    return sandbox_account_ensure(name="Alpha sandbox", api_key=SANDBOX_KEY)


@pytest.fixture
def reauth_fresh():
    """Mark a logged-in test client's session as having just confirmed the password (trunks.reauth)."""
    import time

    from trunks.reauth import REAUTH_SESSION_KEY

    def mark(client):
        session = client.session
        session[REAUTH_SESSION_KEY] = int(time.time())
        session.save()

    return mark


@pytest.fixture
def brenda(tenant_b):
    """Manager in tenant B: reads B's audit log, never anything of tenant A."""
    return UserFactory(username="brenda", member_of=tenant_b, member_of__role=Role.MANAGER)


@pytest.fixture(autouse=True)
def fresh_login_throttle(monkeypatch):
    """Each test counts failed log-ins afresh (portal.throttle's counters live in the cache, and
    every test client signs in from 127.0.0.1)."""
    import uuid

    import portal.throttle

    monkeypatch.setattr(portal.throttle, "KEY_PREFIX", f"login-throttle-{uuid.uuid4().hex}")


@pytest.fixture(autouse=True)
def fresh_audit_cache():
    """Each test starts with no cached audit figures (trunks.audit.cache): ids are reused across
    tests on SQLite, and the cache (locmem or Redis) outlives a test."""
    from trunks.audit.cache import audit_cache_clear

    audit_cache_clear()
