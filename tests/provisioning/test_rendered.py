"""The unbound form's fragment rendered once (trunks.provisioning.rendered): the same page as a fresh
rendering, its own tokens on every request, and any change to what it shows seen at once."""

import re

import pytest
import responses

from tests.pages import per_request_values_blanked
from tests.trunk_fixtures import CANARY, NUMBERS_URL, TRUNKS_URL, VALID, created, token_from
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


# --- a create's result ------------------------------------------------------------------------------

HX = {"HX-Request": "true"}
SHOWN = {
    **VALID,
    "password": CANARY,
    # What the settings list shows, escaped as the template escapes it.
    "description": "<b>\"Reception\" & 'Ops'</b>",
}


def _created_page(client, *, htmx: bool, token: str | None = None) -> tuple[str, str]:
    """A create's answer, and that answer with what differs per attempt (its record) blanked."""
    token = token or token_from(client.get(URL).content.decode())
    response = client.post(URL, {**SHOWN, "submission_token": token}, headers=HX if htmx else {})
    assert response.status_code == 200
    html = response.content.decode()
    blanked = re.sub(r"/trunks/attempts/[0-9a-f-]+/", "/trunks/attempts/…/", html)
    return html, re.sub(r"/audit/\d+/", "/audit/…/", per_request_values_blanked(blanked))


def _fresh(monkeypatch) -> None:
    monkeypatch.setattr("trunks.provisioning.views.trunk_result_fragment", lambda **kwargs: None)


@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "page"])
@pytest.mark.parametrize("who", ["alice", "mallory"], ids=["staff", "manager"])
def test_a_created_trunks_panel_from_the_rendered_fragment_is_the_panel_rendered_afresh(
    client, keyed_a, crazytel, monkeypatch, request, htmx, who
):
    client.force_login(request.getfixturevalue(who))
    rendered.FRAGMENTS.clear()
    crazytel.post(TRUNKS_URL, json=created("CT770001", id="trunk-<7>"))
    kept, kept_blanked = _created_page(client, htmx=htmx)
    assert "CT770001" in kept and CANARY in kept and "trunk-&lt;7&gt;" in kept
    assert "&lt;b&gt;&quot;Reception&quot; &amp; &#x27;Ops&#x27;&lt;/b&gt;" in kept
    _fresh(monkeypatch)
    _, fresh_blanked = _created_page(client, htmx=htmx)
    assert kept_blanked == fresh_blanked
    # What is kept holds none of a create's own values: the password above all.
    markup = "".join(str(part) for kept in rendered.FRAGMENTS._html.values() for part in kept)
    assert CANARY not in markup and "CT770001" not in markup and "Reception" not in markup


def test_an_earlier_submissions_panel_from_the_rendered_fragment_is_the_panel_rendered_afresh(
    staff, crazytel, monkeypatch
):
    crazytel.post(TRUNKS_URL, json=created("CT770002"))
    token = token_from(staff.get(URL).content.decode())
    _created_page(staff, htmx=True, token=token)
    kept, kept_blanked = _created_page(staff, htmx=True, token=token)
    assert "This form was already submitted: trunk CT770002 was created." in kept
    assert CANARY not in kept
    _fresh(monkeypatch)
    _, fresh_blanked = _created_page(staff, htmx=True, token=token)
    assert kept_blanked == fresh_blanked
