"""`trunk_generate`: many Trunk records for the bench, listed by /trunks/ like any other."""

import io

import pytest
from django.core.management import CommandError, call_command

from trunks.crazytel.contract import username_is_valid
from trunks.models import Trunk


def test_generates_trunks_with_crazytel_usernames_never_taken_twice(db, alices_trunk, client):
    call_command("trunk_generate", count=120, tenants=2, users_per_tenant=2, stdout=io.StringIO())
    call_command("trunk_generate", count=30, tenants=2, users_per_tenant=2, stdout=io.StringIO())
    usernames = list(Trunk.objects.values_list("username", flat=True))
    assert len(usernames) == 151 == len(set(usernames))
    assert all(username_is_valid(u) for u in usernames)
    generated = Trunk.objects.filter(tenant__slug="bench-01")
    assert generated.exists() and generated.filter(enabled=False).exists()
    assert not generated.filter(created_by__isnull=True).exists()

    member = generated.first().created_by
    client.force_login(member)
    page = client.get("/trunks/").content.decode()
    assert generated.order_by("-created_at", "-id").first().username in page


def test_refuses_nonsense_counts(db):
    with pytest.raises(CommandError):
        call_command("trunk_generate", count=0, stdout=io.StringIO())
