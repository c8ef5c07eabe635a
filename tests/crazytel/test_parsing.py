"""Reading upstream text: the bounded JSON parse and the secret scrubber."""

import pytest

from trunks.crazytel.parsing import MAX_JSON_DEPTH, JSONRefused, json_loads_bounded, strip_secrets


def test_json_nested_to_the_limit_is_read_and_one_level_more_is_refused():
    assert json_loads_bounded("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)
    with pytest.raises(JSONRefused):
        json_loads_bounded("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))
    with pytest.raises(JSONRefused):
        json_loads_bounded("{" * (MAX_JSON_DEPTH + 1))


def test_brackets_inside_strings_do_not_count_as_nesting():
    text = '{"a": "' + "[{" * MAX_JSON_DEPTH + '", "b": [[1]]}'
    assert json_loads_bounded(text) == {"a": "[{" * MAX_JSON_DEPTH, "b": [[1]]}


def test_a_secret_goes_with_its_key_and_is_redacted_inside_longer_text():
    secrets = ("Sup3rSecret", "", "abc")
    answer = {
        "username": "CT123456",
        "note": "set to Sup3rSecret today",
        "echo": "Sup3rSecret",
        "short": "abc",
        "nested": [{"sip_password": "x", "text": "xSup3rSecretx"}],
        "count": 3,
    }
    assert strip_secrets(answer, secrets) == {
        "username": "CT123456",
        "note": "set to [redacted] today",
        "nested": [{"text": "x[redacted]x"}],
        "count": 3,
    }
