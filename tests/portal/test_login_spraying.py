"""Issue 16.7: password spraying is slowed — failures from one address across usernames, and for
one username across addresses, each hit a limit with a cool-off (portal.throttle)."""

import time

import pytest
from django.core.cache import cache

import portal.throttle
from tests.factories import UserFactory

LOGIN = "/accounts/login/"


@pytest.fixture
def limits(settings):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 6
    settings.LOGIN_USERNAME_FAILURE_LIMIT = 4
    settings.AXES_FAILURE_LIMIT = 3
    return settings


def _fail(client, username, address="10.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": "wrong"}, REMOTE_ADDR=address)


def test_one_address_trying_many_usernames_is_stopped(client, limits, charlie, password):
    for i in range(limits.LOGIN_ADDRESS_FAILURE_LIMIT):
        # Never the same username twice: django-axes' username+address lock never triggers.
        assert _fail(client, f"user{i}").status_code == 200
    response = client.post(
        LOGIN, {"username": "charlie", "password": password}, REMOTE_ADDR="10.0.0.1"
    )
    assert response.status_code == 429
    assert "Too many failed log-ins from your address" in response.content.decode()
    # Another address is not affected.
    ok = client.post(LOGIN, {"username": "charlie", "password": password}, REMOTE_ADDR="10.0.0.2")
    assert ok.status_code == 302


def test_one_username_tried_from_many_addresses_is_stopped(client, limits, charlie, password):
    for i in range(limits.LOGIN_USERNAME_FAILURE_LIMIT):
        assert _fail(client, "charlie", address=f"10.0.1.{i}").status_code == 200
    response = client.post(
        LOGIN, {"username": "charlie", "password": password}, REMOTE_ADDR="10.0.2.1"
    )
    assert response.status_code == 429
    assert "Too many failed log-ins for this username" in response.content.decode()


def _seconds_left(key: str) -> float:
    """When the cache forgets `key` (locmem keeps expiries in _expire_info; Redis as a TTL)."""
    full = cache.make_and_validate_key(key)
    if hasattr(cache, "_expire_info"):
        return cache._expire_info[full] - time.time()
    return cache._cache.get_client(full).ttl(full)


def test_the_limits_are_a_cool_off_not_a_permanent_lock(client, limits, charlie, password):
    for i in range(limits.LOGIN_ADDRESS_FAILURE_LIMIT):
        _fail(client, f"user{i}")
    key = portal.throttle._key(portal.throttle.ADDRESS, "10.0.0.1")
    assert 0 < _seconds_left(key) <= limits.AXES_COOLOFF_TIME.total_seconds()
    login = {"username": "charlie", "password": password}
    assert client.post(LOGIN, login, REMOTE_ADDR="10.0.0.1").status_code == 429
    cache.delete(key)  # what the cache does when the window ends (no waiting in tests)
    assert client.post(LOGIN, login, REMOTE_ADDR="10.0.0.1").status_code == 302


def test_below_the_limits_colleagues_behind_one_address_still_sign_in(db, client, limits, password):
    people = [UserFactory(username=f"colleague{i}") for i in range(3)]
    for person in people:
        _fail(client, person.username)  # one typo each
    for person in people:
        response = client.post(
            LOGIN, {"username": person.username, "password": password}, REMOTE_ADDR="10.0.0.1"
        )
        assert response.status_code == 302


def test_an_admins_unlock_clears_the_per_username_limit(client, limits, alice, adam, password):
    for i in range(limits.LOGIN_USERNAME_FAILURE_LIMIT):
        _fail(client, "alice", address=f"10.0.3.{i}")
    membership = alice.memberships.get()
    admin = client.__class__()
    admin.force_login(adam)
    assert "locked out" in admin.get("/tenants/alpha/").content.decode()
    admin.post(f"/tenants/alpha/members/{membership.pk}/unlock/")
    ok = client.post(LOGIN, {"username": "alice", "password": password}, REMOTE_ADDR="10.0.4.1")
    assert ok.status_code == 302
