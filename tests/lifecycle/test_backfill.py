"""Migration 0006 fills the Trunk table from the audit log already there."""

import importlib

from django.apps import apps
from django.utils import timezone

from trunks.models import AuditKind, AuditRecord, AuditStatus, Trunk

backfill = importlib.import_module("trunks.migrations.0008_trunk_backfill").backfill


def _attempt(tenant, actor, **kw):
    now = timezone.now()
    return AuditRecord.objects.create(
        kind=AuditKind.TRUNK_CREATE, tenant=tenant, tenant_name=tenant.name, actor=actor,
        actor_username=actor.username, started_at=now, finished_at=now,
        data={"caller_id_number": "61298765432", "description": "Old", "enabled": False}, **kw,
    )  # fmt: skip


def test_succeeded_creates_and_resolved_unknowns_become_trunks_once(tenant_a, alice):
    _attempt(
        tenant_a, alice, status=AuditStatus.SUCCEEDED, trunk_username="CT100001", trunk_id="a-1"
    )
    _attempt(tenant_a, alice, status=AuditStatus.FAILED)
    unknown = _attempt(tenant_a, alice, status=AuditStatus.UNKNOWN)
    AuditRecord.objects.create(
        kind=AuditKind.OUTCOME_RESOLVED, tenant=tenant_a, tenant_name=tenant_a.name,
        started_at=timezone.now(), status=AuditStatus.SUCCEEDED, related=unknown,
        trunk_username="CT100002", data={"created": True, "trunk_username": "CT100002"},
    )  # fmt: skip
    Trunk.objects.all().delete()
    backfill(apps, None)
    backfill(apps, None)  # twice: nothing doubled
    made = {t.username: t for t in Trunk.objects.all()}
    assert set(made) == {"CT100001", "CT100002"}
    assert made["CT100001"].trunk_id == "a-1" and made["CT100001"].enabled is False
    assert made["CT100002"].trunk_id == "" and made["CT100002"].created_by == alice
    assert made["CT100001"].description == "Old"
