"""Django admin lists the portal's trunks, read-only: a trunk changes only through its page."""

from trunks.models import Trunk


def test_admin_lists_trunks_and_refuses_changes(client, root, alices_trunk, tenant_b):
    client.force_login(root)
    listing = client.get("/admin/trunks/trunk/")
    assert listing.status_code == 200
    assert "CT123456" in listing.content.decode()
    filtered = client.get(f"/admin/trunks/trunk/?tenant__id__exact={tenant_b.pk}")
    assert filtered.status_code == 200 and "CT123456" not in filtered.content.decode()

    page = client.get(f"/admin/trunks/trunk/{alices_trunk.pk}/change/")
    assert page.status_code == 200
    assert 'name="description"' not in page.content.decode()  # shown, not editable
    assert client.post(f"/admin/trunks/trunk/{alices_trunk.pk}/change/", {}).status_code == 403
    assert client.get("/admin/trunks/trunk/add/").status_code == 403
    assert (
        client.post(f"/admin/trunks/trunk/{alices_trunk.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert Trunk.objects.filter(pk=alices_trunk.pk, description="Reception").exists()
