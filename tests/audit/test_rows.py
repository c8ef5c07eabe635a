"""The hot path's hand-written INSERTs (trunks.rows): the parameters they send are what the ORM's
own save path would send for the same instance, field by field."""

import uuid

import pytest
from django.db import connection
from django.utils import timezone
from django.utils.functional import lazy

from trunks.models import AuditRecord, AuditStatus, RateLimitBucket, Tenant, Trunk
from trunks.rows import _insert, _params, db_converter

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
        ours = db_converter(field, connection)(value)
        assert _comparable([ours]) == _comparable([field.get_db_prep_save(value, connection)])


class _Text(str):
    pass


# Values of each kind a field may be given: the converter's own types, None, and others that take
# the field's methods (a str for an int, a naive or a subclassed datetime, a UUID as text, a lazy
# string, a str subclass, a JSON scalar).
_VALUES = {
    "uuid": [uuid.UUID(int=7), "00000000-0000-0000-0000-000000000007", None],
    "tenant": [3, "3", None],
    "actor": [5, None],
    "status": ["pending", AuditStatus.SUCCEEDED, _Text("failed"), lazy_text(), None],
    "upstream_status": [201, "201", True, None],
    "duration_ms": [0, 2**31 - 1, "7", None],
    "chain_seq": [2**40, None],
    "started_at": [
        timezone.now(),
        timezone.now().replace(tzinfo=None),
        timezone.localtime(timezone.now()),
        None,
    ],
    "data": [{"a": [1, 2.5, None, True]}, [1, "x"], "scalar", 3, None],
    "response": [{"id": 9}, None],
    "client_ip": ["2001:0DB8::1", "127.0.0.1", None],
    "related": [11, None],
}
_TRUNK_VALUES = {
    "enabled": [True, False, 1, None],
    "version": [1, "2"],
    "created_at": [timezone.now()],
    "requested": [{"enabled": False}, None],
    "created_record": [4, None],
}


@pytest.mark.parametrize("model, values", [(AuditRecord, _VALUES), (Trunk, _TRUNK_VALUES)])
def test_each_fields_converter_gives_what_get_db_prep_save_gives(model, values):
    import warnings

    for name, cases in values.items():
        field = model._meta.get_field(name)
        convert = db_converter(field, connection)
        for value in cases:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a naive datetime's warning, either way
                expected = _comparable([field.get_db_prep_save(value, connection)])
                ours = _comparable([convert(value)])
            assert ours == expected, (name, value)
            assert [type(v) for v in ours] == [type(v) for v in expected], (name, value)


def _fields_and_state(instance):
    # Not the pickling protocol's version mark, which copy.copy() leaves in a copy's __dict__.
    values = {k: v for k, v in instance.__dict__.items() if k not in ("_state", "_django_version")}
    state = instance._state
    # The related-object cache copied: a state that goes clears its own.
    return values, (state.adding, state.db, dict(state.fields_cache))


def test_a_new_row_is_what_the_models_constructor_makes():
    from django.contrib.auth import get_user_model

    from trunks.rows import row_new

    tenant = Tenant(id=3, name="Acme", slug="acme")
    actor = get_user_model()(id=8, username="bob")
    now = timezone.now()
    common = dict(kind="trunk_create", tenant_name="Acme", status=AuditStatus.PENDING)
    for user in (actor, None):
        token = uuid.uuid4()
        orms = AuditRecord(**common, uuid=token, tenant=tenant, actor=user, started_at=now)
        ours = row_new(
            AuditRecord,
            {**common, "uuid": token, "tenant_id": 3, "actor_id": user and 8, "started_at": now},
            related={"tenant": tenant, "actor": user},
        )
        assert _fields_and_state(ours) == _fields_and_state(orms)
    # Defaults: a callable's called for each row (a fresh dict, a fresh uuid), a value shared.
    first, second = row_new(AuditRecord, {}), row_new(AuditRecord, {})
    assert (first.data, first.status, first.response) == ({}, AuditStatus.PENDING, None)
    assert first.data is not second.data and first.uuid != second.uuid
    trunk = row_new(Trunk, {"tenant_id": 3, "username": "CT1", "created_at": now})
    orms = Trunk(tenant_id=3, username="CT1", created_at=now)
    assert _fields_and_state(trunk) == _fields_and_state(orms)
    with pytest.raises(TypeError, match="no field"):
        row_new(Trunk, {"tenant": tenant})


def test_a_copied_row_is_what_copy_makes_and_leaves_the_original_as_it_was():
    import copy

    from trunks.rows import row_copy

    record = _record()
    record.pk = 12
    record._state.adding = False
    ours, theirs = row_copy(record), copy.copy(record)
    assert _fields_and_state(ours) == _fields_and_state(theirs)
    ours.status = AuditStatus.SUCCEEDED
    ours._state.fields_cache["tenant"] = None
    assert record.status == AuditStatus.PENDING and record.tenant.name == "Acme"
