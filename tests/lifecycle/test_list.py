"""/trunks/: each row's markup (written in Python, not by the template engine), escaped."""

from django.utils import timezone

from trunks.models import Trunk, TrunkState


def test_rows_link_each_trunk_with_its_number_state_and_creator_escaped(client, alice, tenant_a):
    at = timezone.now()
    Trunk.objects.create(
        tenant=tenant_a, trunk_id="tid-1", username="CT111111", caller_id_number="61298765432",
        description="Front <desk>", enabled=False, created_by=alice,
        created_by_username="alice", created_at=at,
    )  # fmt: skip
    Trunk.objects.create(
        tenant=tenant_a, trunk_id="", username="CT222222", description="", created_at=at,
        state=TrunkState.CONFIRMED,
    )  # fmt: skip
    client.force_login(alice)
    html = client.get("/trunks/").content.decode()
    assert '<a href="/trunks/CT111111/"><code>CT111111</code></a>' in html
    assert "02 9876 5432" in html and "Front &lt;desk&gt;" in html and "<desk>" not in html
    assert '<span class="badge badge-error">suspended</span>' in html
    assert '<span class="badge badge-unknown">no Crazytel id</span>' in html
    assert '<td data-label="Tenant">Alpha Telecom</td>' in html
    local = timezone.localtime(at)
    assert f"{local.day} {local:%b %Y %H:%M}" in html

    suspended = client.get("/trunks/?state=suspended").content.decode()
    assert "CT111111" in suspended and "CT222222" not in suspended
    assert '<option value="suspended" selected>Suspended</option>' in suspended
