"""Crazytel's password rules: one definition for the server and the page's checklist."""

import json
import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trunks.provisioning.passwords import (
    PASSWORD_RULES,
    password_failures,
    password_rules_json,
    trunk_password_generate,
)


@pytest.mark.parametrize(
    ("password", "broken"),
    [
        ("Abcdefg1", []),
        ("Abcdef1", ["length"]),
        ("abcdefg1", ["upper"]),
        ("ABCDEFG1", ["lower"]),
        ("Abcdefgh", ["digit"]),
        ("", ["length", "upper", "lower", "digit"]),
        ("Abcdefg1 ", ["charset"]),
        ("Abcdéfg1", ["charset"]),
        ("Abcdefg1\n", ["charset"]),
        ("Abc\x00defg1", ["charset"]),
        ("Ab1!@#$%^&*()_+-={}[]|:;<>?,./~`'\"\\", []),
    ],
)
def test_it_names_exactly_the_rules_a_password_breaks(password, broken):
    assert [rule.id for rule in password_failures(password)] == broken


def test_crazytels_four_rules_come_first_and_are_marked_as_crazytels():
    assert [r.id for r in PASSWORD_RULES if r.source == "crazytel"] == [
        "length",
        "upper",
        "lower",
        "digit",
    ]


def test_rules_for_the_page_are_plain_json_with_patterns_javascript_can_compile():
    data = json.loads(json.dumps(password_rules_json()))
    assert [r["id"] for r in data] == [r.id for r in PASSWORD_RULES]
    for rule in data:
        assert set(rule) == {"id", "label", "pattern", "forbids"}
        # Only the regex subset both engines read the same way: classes, ranges, quantifiers.
        assert re.fullmatch(r"[\[\]\\sS^A-Za-z0-9!~{}\-]+", rule["pattern"]), rule["pattern"]


def test_generated_passwords_meet_every_rule_and_are_long_and_varied():
    seen = set()
    for _ in range(200):
        password = trunk_password_generate()
        assert password_failures(password) == []
        assert len(password) >= 16
        assert set(password) <= set(string.ascii_letters + string.digits)
        seen.add(password)
    assert len(seen) == 200


def test_generated_password_length_is_never_below_16():
    assert len(trunk_password_generate(32)) == 32
    with pytest.raises(ValueError):
        trunk_password_generate(12)


@given(st.text(max_size=40))
def test_rules_agree_with_a_plain_reading_of_the_documentation(value):
    expected_ok = (
        len(value) >= 8
        and any("A" <= c <= "Z" for c in value)
        and any("a" <= c <= "z" for c in value)
        and any("0" <= c <= "9" for c in value)
        and all("!" <= c <= "~" for c in value)
    )
    assert (password_failures(value) == []) == expected_ok
