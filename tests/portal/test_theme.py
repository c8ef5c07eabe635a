"""Dark mode: the theme chosen with the header's toggle (a cookie) is drawn from the first paint;
without a choice the stylesheet follows the system's prefers-color-scheme."""

import pytest

from portal.context_processors import THEME_COOKIE


@pytest.mark.parametrize("cookie", ["dark", "light"])
def test_a_chosen_theme_is_rendered_into_the_page(client, db, cookie):
    client.cookies[THEME_COOKIE] = cookie
    html = client.get("/accounts/login/").content.decode()
    assert f'<html lang="en-AU" data-theme="{cookie}">' in html


@pytest.mark.parametrize("cookie", [None, "", "purple", '"><script>'])
def test_without_a_valid_choice_the_page_follows_the_system(client, db, cookie):
    if cookie is not None:
        client.cookies[THEME_COOKIE] = cookie
    html = client.get("/accounts/login/").content.decode()
    assert '<html lang="en-AU">' in html
    assert "data-theme-toggle" in html  # the toggle, shown by static/js/portal.js
