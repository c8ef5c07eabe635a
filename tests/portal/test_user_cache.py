"""The signed-in user read from the cache (portal/user_cache.py): no query for the user on a page,
and never a copy older than the last write of the user's row."""

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

LOGIN = "/accounts/login/"


@pytest.fixture(autouse=True)
def _user_cache_on(settings):
    # On in production with Redis; here on the test's cache (one process), whatever it is.
    settings.USER_CACHE = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _signed_in(client, charlie, password):
    assert client.post(LOGIN, {"username": "charlie", "password": password}).status_code == 302
    assert client.get("/").status_code == 200  # reads the user once and keeps a copy


def _user_queries(client, url="/"):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    table = get_user_model()._meta.db_table
    return response, [q["sql"] for q in ctx.captured_queries if f'FROM "{table}"' in q["sql"]]


def test_a_page_reads_the_user_from_the_cache(client, charlie, password):
    _signed_in(client, charlie, password)
    response, queries = _user_queries(client)
    assert response.status_code == 200 and queries == []
    assert response.wsgi_request.user.pk == charlie.pk


def test_the_copy_holds_no_password_hash_and_the_user_still_has_one(client, charlie, password):
    _signed_in(client, charlie, password)
    stored = repr(cache.get(f"auth:user:{charlie.pk}"))
    assert charlie.password not in stored
    response, _ = _user_queries(client)
    user = response.wsgi_request.user
    assert user.check_password(password)  # read from the database when asked for
    user.first_name = "Charles"
    user.save()  # a copy's save leaves the password alone
    charlie.refresh_from_db()
    assert charlie.first_name == "Charles" and charlie.check_password(password)


def test_a_password_set_elsewhere_ends_the_session(client, charlie, password):
    _signed_in(client, charlie, password)
    charlie.set_password("another-long-password-42")
    charlie.save()
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


@pytest.mark.parametrize(
    ("change", "expected"),
    [({"is_active": False}, 302), ({"is_superuser": True}, 200), ({"username": "chaz"}, 200)],
)
def test_any_change_to_the_user_is_seen_on_the_next_page(
    client, charlie, password, change, expected
):
    _signed_in(client, charlie, password)
    for name, value in change.items():
        setattr(charlie, name, value)
    charlie.save()
    response, queries = _user_queries(client)
    assert response.status_code == expected
    if expected == 200:
        assert len(queries) == 1  # read again, then kept
        user = response.wsgi_request.user
        assert all(getattr(user, name) == value for name, value in change.items())


def test_a_deleted_user_is_signed_out(client, charlie, password):
    _signed_in(client, charlie, password)
    get_user_model().objects.filter(pk=charlie.pk).delete()
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


def test_without_the_cache_the_user_is_read_from_the_database(
    client, charlie, password, monkeypatch
):
    _signed_in(client, charlie, password)

    def broken(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "get_many", broken)
    if hasattr(cache, "get_many_quick"):  # the Redis cache's quick read (portal.redis_quick)
        monkeypatch.setattr(cache, "get_many_quick", broken)
    response, queries = _user_queries(client)
    assert response.status_code == 200 and len(queries) == 1


def _get_many_keys(monkeypatch) -> list[list[str]]:
    """The keys of every get_many() (or the Redis cache's get_many_quick()) on the default cache,
    from now on."""
    from django.core.cache import caches

    calls: list[list[str]] = []
    backend = type(caches["default"])

    def recording(original):
        def recorded(self, keys, *args, **kwargs):
            calls.append([str(k) for k in keys])
            return original(self, keys, *args, **kwargs)

        return recorded

    for name in ("get_many", "get_many_quick"):
        if hasattr(backend, name):
            monkeypatch.setattr(backend, name, recording(getattr(backend, name)))
    return calls


def test_the_session_read_brings_the_users_copy_in_the_same_round_trip(
    client, charlie, password, settings, monkeypatch
):
    settings.SESSION_ENGINE = "portal.sessions"
    _signed_in(client, charlie, password)
    client.get("/")  # this process has seen whose session it is
    calls = _get_many_keys(monkeypatch)
    response, queries = _user_queries(client)
    assert response.status_code == 200 and queries == []
    assert response.wsgi_request.user.pk == charlie.pk
    with_user = [keys for keys in calls if any(k.startswith("auth:user") for k in keys)]
    assert len(with_user) == 1, calls
    assert any(k.startswith("django.contrib.sessions.cached_db") for k in with_user[0])


def test_a_wrong_guess_of_whose_session_it_is_reads_the_right_user(
    client, charlie, password, settings, monkeypatch, alice
):
    from portal.sessions import SESSION_USERS

    settings.SESSION_ENGINE = "portal.sessions"
    _signed_in(client, charlie, password)
    SESSION_USERS.note(client.session.session_key, alice.pk)
    response, queries = _user_queries(client)
    assert response.status_code == 200 and queries == []
    assert response.wsgi_request.user.pk == charlie.pk
    # A change to the user after the session's read is still seen on the next page.
    charlie.is_active = False
    charlie.save()
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


# Without the cache (USER_CACHE off: no shared cache), every page reads the user's row, its
# statement compiled once; anything but an exact match is Django's get_user's to decide.


def _signed_in_without_cache(client, charlie, password, settings):
    settings.USER_CACHE = False
    _signed_in(client, charlie, password)


def test_without_the_cache_a_page_reads_the_user_in_one_statement(
    client, charlie, password, settings
):
    _signed_in_without_cache(client, charlie, password, settings)
    response, queries = _user_queries(client)
    assert response.status_code == 200 and len(queries) == 1
    user = response.wsgi_request.user
    assert user.pk == charlie.pk and user.check_password(password)


@pytest.mark.parametrize(
    "change",
    [
        lambda user: user.set_password("another-long-password-42"),
        lambda user: setattr(user, "is_active", False),
    ],
    ids=["password set elsewhere", "made inactive"],
)
def test_without_the_cache_a_changed_user_is_signed_out(
    client, charlie, password, settings, change
):
    _signed_in_without_cache(client, charlie, password, settings)
    change(charlie)
    charlie.save()
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


def test_without_the_cache_a_deleted_user_is_signed_out(client, charlie, password, settings):
    _signed_in_without_cache(client, charlie, password, settings)
    get_user_model().objects.filter(pk=charlie.pk).delete()
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


def test_without_the_cache_a_hash_from_a_fallback_secret_is_renewed(
    client, charlie, password, settings
):
    # Django's get_user decides: the session made under the old secret stays, under a new hash.
    _signed_in_without_cache(client, charlie, password, settings)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-for-this-test-0123456789-abcdefghijklmnop"
    response = client.get("/")
    assert response.status_code == 200 and response.wsgi_request.user.pk == charlie.pk
    assert client.session["_auth_user_hash"] == charlie.get_session_auth_hash()
