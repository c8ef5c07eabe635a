"""Issue 16.1: a tenant admin cannot enrol anyone unasked, learns nothing about usernames
elsewhere, and cannot name a tenant like another one."""

import re

import pytest

from trunks.errors import Conflict
from trunks.models import AuditKind, AuditRecord, Invitation, Membership, Role
from trunks.tenants import members, services

HTMX = {"HX-Request": "true"}


@pytest.fixture
def beta_admin(bob, tenant_b):
    bob.memberships.filter(tenant=tenant_b).update(role=Role.ADMIN)
    return bob


def test_a_tenant_admin_cannot_enrol_a_user_of_another_tenant(client, beta_admin, alice, tenant_b):
    client.force_login(beta_admin)
    client.post(f"/tenants/{tenant_b.slug}/members/", {"username": "alice", "role": "staff"})
    assert not Membership.objects.filter(user=alice, tenant=tenant_b).exists()
    assert Invitation.objects.filter(username="alice", tenant=tenant_b).exists()


def test_the_answer_does_not_tell_whether_a_username_exists(client, beta_admin, alice, tenant_b):
    client.force_login(beta_admin)

    def answer(username):
        html = client.post(
            f"/tenants/{tenant_b.slug}/members/",
            {"username": username, "role": "staff"},
            headers=HTMX,
        ).content.decode()
        # The answer's note and any error on the form, with the name typed taken out.
        note = re.findall(r'role="(?:status|alert)"><p>(.*?)</p>', html)
        errors = re.findall(r'class="errorlist"[^>]*>(.*?)</ul>', html)
        return [text.replace(username, "NAME") for text in note + errors]

    assert answer("alice") == answer("nobody-by-this-name")
    assert "is invited to join" in answer("alice")[0]
    events = AuditRecord.objects.filter(kind=AuditKind.MEMBER_INVITED, tenant=tenant_b)
    assert sorted(e.data["username"] for e in events) == [
        "alice",
        "alice",
        "nobody-by-this-name",
    ]


def test_the_invited_person_sees_the_invitation_after_signing_in_and_accepts(
    client, beta_admin, alice, tenant_b, password
):
    members.member_add(actor=beta_admin, tenant=tenant_b, username="alice", role="manager")
    client.post("/accounts/login/", {"username": "alice", "password": password})
    response = client.get("/trunks/new/")
    assert response.status_code == 302 and response["Location"].startswith("/invitations/")
    page = client.get(response["Location"]).content.decode()
    assert tenant_b.name in page and "Manager" in page
    invitation = Invitation.objects.get(username="alice")
    client.post(f"/invitations/{invitation.pk}/", {"answer": "accept", "next": "/trunks/new/"})
    assert Membership.objects.get(user=alice, tenant=tenant_b).role == Role.MANAGER
    assert AuditRecord.objects.filter(kind=AuditKind.INVITATION_ACCEPTED, actor=alice).exists()
    # Shown once per sign-in: the next page is the one asked for.
    assert client.get("/trunks/new/").status_code == 200


def test_a_declined_invitation_changes_nothing(client, beta_admin, alice, tenant_b):
    members.member_add(actor=beta_admin, tenant=tenant_b, username="alice", role="staff")
    invitation = Invitation.objects.get(username="alice")
    client.force_login(alice)
    client.post(f"/invitations/{invitation.pk}/", {"answer": "decline"})
    assert not Membership.objects.filter(user=alice, tenant=tenant_b).exists()
    assert not Invitation.objects.exists()
    assert AuditRecord.objects.filter(kind=AuditKind.INVITATION_DECLINED).exists()


def test_nobody_can_accept_someone_elses_invitation(client, beta_admin, charlie, tenant_b):
    members.member_add(actor=beta_admin, tenant=tenant_b, username="alice", role="staff")
    invitation = Invitation.objects.get(username="alice")
    client.force_login(charlie)
    response = client.post(f"/invitations/{invitation.pk}/", {"answer": "accept"})
    assert response.status_code == 404
    assert not Membership.objects.filter(user=charlie, tenant=tenant_b).exists()


def test_a_tenant_admin_withdraws_an_open_invitation_from_the_tenants_page(
    client, beta_admin, alice, tenant_b
):
    members.member_add(actor=beta_admin, tenant=tenant_b, username="alice", role="staff")
    invitation = Invitation.objects.get(username="alice")
    client.force_login(beta_admin)
    page = client.get(f"/tenants/{tenant_b.slug}/").content.decode()
    withdraw = f"/tenants/{tenant_b.slug}/invitations/{invitation.pk}/withdraw/"
    assert withdraw in page
    html = client.post(withdraw, headers=HTMX).content.decode()
    assert "The invitation of alice is withdrawn." in html and withdraw not in html
    assert not Invitation.objects.exists()
    record = AuditRecord.objects.get(kind=AuditKind.INVITATION_WITHDRAWN)
    assert record.actor == beta_admin and record.data["username"] == "alice"
    # Too late to accept it; a second withdrawal says it is no longer open.
    client.force_login(alice)
    assert client.post(f"/invitations/{invitation.pk}/", {"answer": "accept"}).status_code == 404
    assert not Membership.objects.filter(user=alice, tenant=tenant_b).exists()
    client.force_login(beta_admin)
    again = client.post(withdraw, follow=True).content.decode()
    assert "That invitation is no longer open." in again


def test_only_an_admin_of_the_invitations_tenant_can_withdraw_it(
    client, beta_admin, adam, alice, tenant_a, tenant_b
):
    members.member_add(actor=beta_admin, tenant=tenant_b, username="charlie", role="staff")
    invitation = Invitation.objects.get(username="charlie")
    client.force_login(adam)  # an admin, of tenant A
    for slug in (tenant_b.slug, tenant_a.slug):
        response = client.post(f"/tenants/{slug}/invitations/{invitation.pk}/withdraw/")
        assert response.status_code in (302, 403, 404)
    assert Invitation.objects.filter(pk=invitation.pk).exists()
    client.force_login(alice)  # staff
    response = client.post(f"/tenants/{tenant_b.slug}/invitations/{invitation.pk}/withdraw/")
    assert response.status_code in (403, 404)
    assert Invitation.objects.filter(pk=invitation.pk).exists()


def test_superusers_still_add_directly(root, alice, tenant_b):
    added = members.member_add(actor=root, tenant=tenant_b, username="alice", role="staff")
    assert added.membership is not None and added.membership.tenant == tenant_b


@pytest.mark.parametrize(
    "lookalike",
    [
        "Alpha Te\u0142ecom",  # not confusable: a different letter (ł) — allowed
        "\u0391lpha Telecom",  # Greek capital alpha
        "Alpha Tele\u0441om",  # Cyrillic es
        "Alpha\u200b Telecom",  # zero-width space
        "Alpha Telecom\u202e",  # right-to-left override
        "ALPHA  TELECOM",
        "\uff21\uff4c\uff50\uff48\uff41 Telecom",  # fullwidth (NFKC)
        "AIpha Telecom",  # capital I for l
    ],
)
def test_lookalike_tenant_names_are_refused(lookalike, root, tenant_a):
    assert tenant_a.name == "Alpha Telecom"
    if "\u0142" in lookalike:
        services.tenant_create(actor=root, name=lookalike, slug="alpha-2")
        return
    with pytest.raises(Conflict):
        services.tenant_create(actor=root, name=lookalike, slug="alpha-2")


def test_tenant_names_are_stored_normalised(root):
    tenant = services.tenant_create(actor=root, name="  \uff3aulu\u200b\u0007 Comms ", slug="zulu")
    assert tenant.name == "Zulu Comms"
