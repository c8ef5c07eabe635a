"""Fixtures for trunks after creation: a trunk made through the portal, on the mocked Crazytel."""

import pytest

from tests.trunk_fixtures import CANARY, TRUNKS_URL, created
from trunks.models import Trunk
from trunks.provisioning.services import trunk_create

TRUNK_ID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
PATCH_URL = f"{TRUNKS_URL}{TRUNK_ID}"
CREATE_DATA = {
    "caller_id_number": "61298765432",
    "sms_sender": "",
    "password": CANARY,
    "description": "Reception",
    "area_code": "02",
    "enabled": True,
    "hide_caller_id": False,
    "softphone_show_balance": True,
    "softphone_sync_sms": False,
}


@pytest.fixture
def alices_trunk(keyed_a, alice, crazytel) -> Trunk:
    """CT123456, created by alice (staff) in tenant A through the portal."""
    crazytel.post(TRUNKS_URL, json=created(id=TRUNK_ID, description="Reception"))
    result = trunk_create(
        actor=alice,
        tenant=keyed_a,
        data=dict(CREATE_DATA),
        request=None,
        submission_token="tok-create-0000000001",
    )
    assert result.succeeded
    return Trunk.objects.get(username="CT123456")
