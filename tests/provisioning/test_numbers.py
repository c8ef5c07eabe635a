"""Numbers for people: Australian national format with the API's label."""

import pytest

from trunks.crazytel.contract import number_is_mobile_sender
from trunks.numbers import number_display, number_national


@pytest.mark.parametrize(
    ("number", "shown"),
    [
        ("61412345678", "0412 345 678"),
        ("61298765432", "02 9876 5432"),
        ("61387654321", "03 8765 4321"),
        ("61733334444", "07 3333 4444"),
        ("61881234567", "08 8123 4567"),
        ("611300123456", "1300 123 456"),
        ("+61 412-345-678", "0412 345 678"),
    ],
)
def test_it_shows_australian_numbers_in_national_format(number, shown):
    assert number_national(number) == shown


@pytest.mark.parametrize("junk", ["", "abc", "61", "6145", "not a number", "٦١٤١٢٣٤٥٦٧٨"])
def test_it_shows_what_it_cannot_parse_as_given(junk):
    assert number_national(junk) == junk.strip()


def test_it_shows_foreign_numbers_internationally():
    assert number_national("14155552671") == "+1 415-555-2671"


def test_it_appends_the_label_after_a_dash():
    assert number_display("61412345678", "Ops mobile") == "0412 345 678 — Ops mobile"
    assert number_display("61298765432", "") == "02 9876 5432"
    assert number_display("61298765432", "  Sydney\n office ") == "02 9876 5432 — Sydney office"


@pytest.mark.parametrize(
    ("number", "ok"),
    [("61412345678", True), ("61298765432", False), ("0412345678", False), ("", False)],
)
def test_only_614_numbers_may_send_sms(number, ok):
    assert number_is_mobile_sender(number) is ok
