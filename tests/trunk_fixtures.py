"""Fixtures for the trunk tests: a keyed tenant whose Crazytel is mocked at the HTTP edge."""

import json
import re

import pytest
import responses
from django.core.cache import cache

from .factories import DEFAULT_BASE_URL, tenant_key_set

API = DEFAULT_BASE_URL
NUMBERS_URL = f"{API}/account/verified-cli/"
TRUNKS_URL = f"{API}/sip-trunks/"
API_KEY_A = "ct-live-key-alpha-0001"
API_KEY_B = "ct-live-key-bravo-0002"
CANARY = "Canary9PasswordXyz"

NUMBERS = [
    {"number": "61298765432", "label": "Sydney office"},
    {"number": "61412345678", "label": "Ops mobile"},
    {"number": "61487654321"},
    {"number": "61387654321", "label": ""},
]


def key_tenant(tenant, key: str, base_url: str = API):
    """Give an existing tenant (a fixture's) a key: the factories' tenant_key_set."""
    return tenant_key_set(tenant, key, base_url=base_url)


@pytest.fixture
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def keyed_a(tenant_a, fresh_cache):
    """Tenant A (the same object as `tenant_a`) with API_KEY_A, on the mocked Crazytel."""
    return key_tenant(tenant_a, API_KEY_A)


@pytest.fixture
def keyed_b(tenant_b, fresh_cache):
    """Tenant B with API_KEY_B, on a Crazytel of its own."""
    return key_tenant(tenant_b, API_KEY_B, base_url="https://crazytel-b.test/api/v1")


@pytest.fixture
def crazytel(fresh_cache):
    """Crazytel at the HTTP edge; the numbers call answers by default."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(NUMBERS_URL, json=NUMBERS)
        yield mock


def created(username: str = "CT123456", **extra) -> dict:
    body = {
        "id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        "username": username,
        "caller_id_number": "61298765432",
        "enabled": True,
        **extra,
    }
    return body


def create_calls(mock) -> list:
    return [c for c in mock.calls if c.request.method == "POST" and c.request.url == TRUNKS_URL]


def sent_json(call) -> dict:
    return json.loads(call.request.body)


def token_from(html: str) -> str:
    match = re.search(r'name="submission_token" value="([^"]+)"', html)
    assert match, "the form carries a submission token"
    return match.group(1)


VALID = {
    "caller_id_number": "61298765432",
    "sms_sender": "61412345678",
    "password": CANARY,
    "description": "Reception phone",
    "area_code": "02",
    "enabled": "on",
    "softphone_show_balance": "on",
}
