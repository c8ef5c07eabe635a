"""The hot path's hand-written INSERTs (trunks.rows): the parameters they send are what the ORM's
own save path would send for the same instance, field by field."""

import uuid

import pytest
from django.db import connection
from django.utils import timezone
from django.utils.functional import lazy

from trunks.models import AuditRecord, AuditStatus, RateLimitBucket, Tenant, Trunk
from trunks.rows import _insert, _params, db_value

pytestmark = pytest.mark.django_db

lazy_text = lazy(lambda: "described lazily", str)


def _comparable(params):
    # psycopg's Jsonb wrapper (PostgreSQL's JSON parameters) compares by identity: compare its value.
    return [getattr(p, "obj", p) for p in params]


def _orms(instance, fields):
    return _comparable([f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields])


def _record(**kwargs):
    tenant = Tenant(id=3, name="Acme", slug="acme")
    values = dict(
        uuid=uuid.uuid4(),
        kind="trunk_create",
        tenant=tenant,
        tenant_name="Acme",
        actor_username="bob",
        client_ip="2001:db8::1",
        user_agent="Mozilla/5.0",
        request_id="ab" * 16,
        data={"caller_id_number": "61299990000", "enabled": True},
        caller_id_number="61299990000",
        description="",
        status=AuditStatus.PENDING,
        submission_token=None,
        started_at=timezone.now(),
    )
    return AuditRecord(**(values | kwargs))


def test_a_records_parameters_are_the_orms_for_text_none_lazy_text_and_choices():
    _sql, fields, _ = _insert(AuditRecord, "default", False)
    for record in [
        _record(),
        _record(description=lazy_text(), submission_token="n" * 32, status="succeeded"),
        _record(error_message=None, trunk_username=12345, upstream_status=201),
    ]:
        assert _comparable(_params(record, fields, connection)) == _orms(record, fields)


def test_a_trunks_and_a_buckets_parameters_are_the_orms():
    for model, instance in [
        (Trunk, Trunk(tenant_id=3, trunk_id="77", username="CT77", created_at=timezone.now())),
        (RateLimitBucket, RateLimitBucket(key="k" * 64)),
    ]:
        _sql, fields, _ = _insert(model, "default", True)
        assert _comparable(_params(instance, fields, connection)) == _orms(instance, fields)


def test_db_value_is_get_db_prep_save():
    record = _record(status=AuditStatus.SUCCEEDED, error_message=lazy_text(), duration_ms=20)
    for name in ("status", "error_message", "duration_ms", "finished_at", "response", "trunk_id"):
        field = AuditRecord._meta.get_field(name)
        value = getattr(record, field.attname)
        ours, orms = db_value(field, value, connection), field.get_db_prep_save(value, connection)
        assert _comparable([ours]) == _comparable([orms])
