"""The header's menu marks the page one is on, and only that one."""

import re

import pytest


@pytest.mark.parametrize(
    ("path", "current"),
    [
        ("/trunks/new/", "New trunk"),
        ("/trunks/", "Trunks"),
        ("/trunks/bulk/", "Bulk"),
        ("/audit/", "Audit log"),
        ("/audit/chart/", "Audit log"),
    ],
)
def test_exactly_one_menu_item_is_the_current_page(client, mallory, path, current):
    client.force_login(mallory)
    html = client.get(path).content.decode()
    marked = re.findall(r'<a href="[^"]*" aria-current="page">([^<]*)</a>', html)
    assert marked == [current]


def test_a_page_outside_the_menu_marks_no_item(client, mallory):
    client.force_login(mallory)
    html = client.get("/accounts/password_change/").content.decode()
    assert 'aria-current="page"' not in html
