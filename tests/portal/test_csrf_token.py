"""The pages' CSRF token (portal.csrf): Django's format, checked by Django's middleware, a fresh
mask on every page, the cookie's secret kept or made as get_token() would."""

import re

import pytest
from django.conf import settings
from django.middleware.csrf import CSRF_ALLOWED_CHARS, _unmask_cipher_token
from django.test import Client

from portal.csrf import _random_indexes

TOKEN_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([A-Za-z0-9]+)"')
HX_HEADER = re.compile(r'"x-csrftoken": "([A-Za-z0-9]+)"')


def _tokens(response) -> list[str]:
    page = response.content.decode()
    return TOKEN_FIELD.findall(page) + HX_HEADER.findall(page)


def test_a_first_visit_gets_a_new_secret_and_a_token_the_middleware_accepts(db):
    client = Client(enforce_csrf_checks=True)
    response = client.get("/accounts/login/")
    secret = response.cookies[settings.CSRF_COOKIE_NAME].value
    tokens = _tokens(response)
    assert tokens and all(len(t) == 64 for t in tokens)
    assert {_unmask_cipher_token(t) for t in tokens} == {secret}
    assert len(secret) == 32 and set(secret) <= set(CSRF_ALLOWED_CHARS)

    tampered = tokens[0][:-1] + ("A" if tokens[0][-1] != "A" else "B")
    refused = client.post(
        "/accounts/login/", {"username": "x", "password": "y", "csrfmiddlewaretoken": tampered}
    )
    assert refused.status_code == 403
    accepted = client.post(
        "/accounts/login/", {"username": "x", "password": "y", "csrfmiddlewaretoken": tokens[0]}
    )
    assert accepted.status_code == 200  # the form again, with its error: past the CSRF check


def test_a_signed_in_page_masks_the_cookies_secret_afresh_and_htmx_posts_with_it(charlie):
    client = Client(enforce_csrf_checks=True)
    client.force_login(charlie)
    first = client.get("/")
    secret = client.cookies[settings.CSRF_COOKIE_NAME].value
    second = client.get("/")
    assert client.cookies[settings.CSRF_COOKIE_NAME].value == secret  # kept, renewed
    assert second.cookies[settings.CSRF_COOKIE_NAME].value == secret
    first_tokens, second_tokens = _tokens(first), _tokens(second)
    assert len(set(first_tokens + second_tokens)) == 2  # one token a page, never the same
    assert {_unmask_cipher_token(t) for t in first_tokens + second_tokens} == {secret}

    logged_out = client.post("/accounts/logout/", headers={"X-CSRFToken": second_tokens[0]})
    assert logged_out.status_code == 302


def test_a_token_from_another_secret_is_refused(charlie):
    client = Client(enforce_csrf_checks=True)
    client.force_login(charlie)
    client.get("/")
    other = Client(enforce_csrf_checks=True)
    foreign = _tokens(other.get("/accounts/login/"))[0]
    assert client.post("/accounts/logout/", headers={"X-CSRFToken": foreign}).status_code == 403


@pytest.mark.parametrize("count", [1, 32, 1000])
def test_random_indexes_cover_the_alphabet_and_nothing_else(count):
    draws = _random_indexes(count)
    assert len(draws) == count
    assert all(0 <= i < len(CSRF_ALLOWED_CHARS) for i in draws)


def test_every_character_can_be_drawn():
    assert set(_random_indexes(20_000)) == set(range(len(CSRF_ALLOWED_CHARS)))


def test_pages_take_their_token_from_portal_csrf(charlie, monkeypatch):
    import portal.csrf

    made = []
    real = portal.csrf.csrf_token_masked
    monkeypatch.setattr(portal.csrf, "csrf_token_masked", lambda r: made.append(1) or real(r))
    client = Client()
    client.force_login(charlie)
    tokens = _tokens(client.get("/"))
    assert made == [1] and len(set(tokens)) == 1  # worked out once a page, used twice
