"""The unbound form's fragment rendered once (trunks.provisioning.rendered): the same page as a fresh
rendering, its own tokens on every request, and any change to what it shows seen at once."""

import re

import pytest
import responses

from tests.pages import per_request_values_blanked
from tests.trunk_fixtures import NUMBERS_URL, token_from
from trunks.provisioning import rendered
from trunks.provisioning.numbers import verified_numbers_forget

URL = "/trunks/new/"


@pytest.fixture
def staff(client, alice, keyed_a):
    client.force_login(alice)
    rendered.FRAGMENTS.clear()
    yield client
    rendered.FRAGMENTS.clear()


def _csrf_tokens(html: str) -> set[str]:
    return set(re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)) | set(
        re.findall(r'"x-csrftoken": "([^"]+)"', html)
    )


def test_the_page_from_the_rendered_fragment_is_the_page_rendered_afresh(
    staff, crazytel, monkeypatch
):
    staff.get(URL)  # renders the fragment once
    cached = staff.get(URL).content.decode()
    assert rendered.FRAGMENTS._html, "the fragment was kept"
    monkeypatch.setattr(rendered, "trunk_form_fragment", lambda **kwargs: None)
    monkeypatch.setattr("trunks.provisioning.views.trunk_form_fragment", lambda **kwargs: None)
    fresh = staff.get(URL).content.decode()
    assert 'id="trunk-form"' in fresh
    assert per_request_values_blanked(cached) == per_request_values_blanked(fresh)


def test_every_page_carries_its_own_tokens_one_csrf_token_per_page(staff, crazytel):
    first, second = (staff.get(URL).content.decode() for _ in range(2))
    assert token_from(first) != token_from(second)
    assert len(_csrf_tokens(first)) == 1 and len(_csrf_tokens(second)) == 1
    assert _csrf_tokens(first) != _csrf_tokens(second)
    # The token spliced in is a good one: the form posts.
    page = staff.get(URL)
    csrf = _csrf_tokens(page.content.decode()).pop()
    staff.handler.enforce_csrf_checks = True
    answer = staff.post(URL, {"csrfmiddlewaretoken": csrf, "submission_token": "x"})
    assert answer.status_code == 200


def test_a_renamed_tenant_and_changed_numbers_show_at_once(staff, crazytel, keyed_a):
    assert "02 9876 5432" in staff.get(URL).content.decode()
    keyed_a.name = "Renamed Pty Ltd"
    keyed_a.save()
    crazytel.replace(
        responses.GET, NUMBERS_URL, json=[{"number": "61299990000", "label": "New office"}]
    )
    verified_numbers_forget(tenant=keyed_a)
    html = staff.get(URL).content.decode()
    assert "Renamed Pty Ltd" in html and "02 9999 0000 — New office" in html
    assert "02 9876 5432" not in html
