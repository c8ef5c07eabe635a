"""The portal's own error pages: header kept, what to do next said, no bare "403 Forbidden"; the
500 page renders with the database out of reach."""

import pytest
from django.db import connections
from django.test import RequestFactory, override_settings
from django.urls import path

from portal import urls as portal_urls
from portal.views import server_error


def _boom(request):
    raise RuntimeError("something unexpected")


urlpatterns = [*portal_urls.urlpatterns, path("boom/", _boom)]
handler500 = portal_urls.handler500


@pytest.mark.django_db
def test_a_missing_page_says_what_to_do_next_with_the_header_kept(client, alice):
    client.force_login(alice)
    response = client.get("/no/such/page/")
    html = response.content.decode()
    assert response.status_code == 404
    assert "There is nothing here" in html and "Go to your home page" in html
    assert "Log out" in html  # the header and its menu


@pytest.mark.django_db
def test_a_forbidden_page_says_which_role_is_missing(client, alice):
    client.force_login(alice)
    response = client.get("/audit/")
    html = response.content.decode()
    assert response.status_code == 403
    assert "Your role does not allow this" in html and "The audit log is for managers." in html
    assert "Log out" in html


@pytest.mark.django_db
def test_a_form_without_its_csrf_token_gets_the_portals_page(alice):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post("/trunks/new/", {})
    html = response.content.decode()
    assert response.status_code == 403
    assert "This form has expired" in html and "Log out" in html
    assert "403 Forbidden" not in html


@pytest.mark.django_db
def test_a_bad_request_gets_the_portals_page(client, settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    response = client.get("/accounts/login/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert "The portal could not read that request" in response.content.decode()


def test_the_500_page_renders_without_the_database(monkeypatch):
    """No `db` fixture: pytest-django refuses any query; the connection is broken on top."""

    def refuse(*args, **kwargs):
        raise AssertionError("the 500 page touched the database")

    monkeypatch.setattr(connections["default"], "cursor", refuse)
    monkeypatch.setattr(connections["default"], "ensure_connection", refuse)
    request = RequestFactory().get("/somewhere/")
    request.request_id = "abc123"
    request.COOKIES["portal_theme"] = "dark"

    response = server_error(request)

    html = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong on our side" in html and "abc123" in html
    assert 'data-theme="dark"' in html and "Crazytel <span>trunk portal</span>" in html


@pytest.mark.django_db
@override_settings(ROOT_URLCONF=__name__, DEBUG=False)
def test_an_unexpected_error_shows_the_500_page(client, alice):
    client.raise_request_exception = False
    client.force_login(alice)
    response = client.get("/boom/")
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()
    assert response["X-Request-ID"] in response.content.decode()
