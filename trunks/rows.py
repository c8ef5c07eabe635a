"""One model row INSERTed as one SQL statement written once per process, not through the ORM's save
path: for the writes on a create's hot path (its audit records and its Trunk), where building the
statement (the instance's save(), the query compiler) cost more CPU than sending and running it.

The values go through each field's own `pre_save` and `get_db_prep_save`, as `save()` and
`bulk_create()` do, so what is stored is what they would store. For the value types a create's
rows hold, each field's conversion is worked out once per process (db_converter): a str (or None)
for a CharField or TextField, which those methods give back as it is, is passed as it is; an int,
a bool, an aware datetime, a UUID, a dict or list goes straight to the connection's own adapter,
the last step those methods take. Anything else takes the field's methods. No signals are sent:
no model written here has a receiver, and the writes stay explicit in the services that make them.
"""

import datetime
import uuid
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from django.db import connections, router
from django.db.backends.base.operations import BaseDatabaseOperations
from django.db.models import (
    BigIntegerField,
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    Field,
    ForeignKey,
    IntegerField,
    JSONField,
    Model,
    PositiveBigIntegerField,
    PositiveIntegerField,
    PositiveSmallIntegerField,
    SmallIntegerField,
    TextField,
    UUIDField,
)
from django.db.models.base import ModelState
from django.db.models.constants import OnConflict
from django.db.models.fields import AutoFieldMixin


@cache
def _defaults(model: type[Model]) -> tuple[dict, tuple, frozenset]:
    """The model's fields' defaults: those that are values (shared, as Field.get_default shares
    them), the callables called for each instance, and every attname."""
    constant, computed = {}, []
    for f in model._meta.concrete_fields:
        if f.has_default() and callable(f.default):
            computed.append((f.attname, f.default))
        else:
            constant[f.attname] = f.get_default()
    return constant, tuple(computed), frozenset(f.attname for f in model._meta.concrete_fields)


def row_new(
    model: type[Model], values: dict[str, Any], related: dict[str, Any] | None = None
) -> Model:
    """A new instance of `model`, not yet saved, as `model(**kwargs)` makes it: `values` by
    attname (a foreign key by its id, `tenant_id`), every other field its default, and `related`,
    the related instances at hand by field name (`tenant`), kept as the ORM keeps them (reading
    them costs no query). For the rows a create writes: Model.__init__ (kwargs matched to fields
    one by one, each related instance through its descriptor) cost several times this. No
    pre_init/post_init signal is sent: no model written here has a receiver."""
    constant, computed, attnames = _defaults(model)
    if not values.keys() <= attnames:
        raise TypeError(f"{model.__name__} has no field {sorted(values.keys() - attnames)}")
    new = model.__new__(model)
    fields = new.__dict__
    fields.update(constant)
    for attname, make in computed:
        if attname not in values:
            fields[attname] = make()
    fields.update(values)
    state = new._state = ModelState()
    if related:
        state.fields_cache = dict(related)
        for value in related.values():
            if value is not None:  # as the related descriptor sets it
                state.db = router.db_for_write(model, instance=value)
                break
    return new


def row_copy(instance: Model) -> Model:
    """A shallow copy of `instance` as copy.copy() makes it (the same field values, its own state
    and related-object cache), without the pickling protocol's round trip."""
    new = instance.__class__.__new__(instance.__class__)
    new.__dict__.update(instance.__dict__)
    state = new._state = ModelState()
    state.__dict__.update(instance._state.__dict__)
    state.__dict__.pop("peers", None)  # as ModelState.__getstate__ leaves them out
    state.fields_cache = dict(instance._state.fields_cache)
    return new


@cache
def _insert(
    model: type[Model], alias: str, ignore_conflicts: bool, when: str = "", also: str = ""
) -> tuple[str, tuple, bool]:
    """The statement, the fields it writes, and whether it returns the new row's id (and `also`,
    more SQL expressions after it)."""
    connection = connections[alias]
    opts = model._meta
    fields = tuple(f for f in opts.concrete_fields if not f.generated and f is not opts.auto_field)
    qn = connection.ops.quote_name
    on_conflict = OnConflict.IGNORE if ignore_conflicts else None
    placeholders = ", ".join(["%s"] * len(fields))
    values = f"SELECT {placeholders} WHERE {when}" if when else f"VALUES ({placeholders})"
    sql = (
        f"{connection.ops.insert_statement(on_conflict=on_conflict)} {qn(opts.db_table)} "
        f"({', '.join(qn(f.column) for f in fields)}) {values}"
    )
    suffix = connection.ops.on_conflict_suffix_sql(fields, on_conflict, None, None)
    if suffix:
        sql += f" {suffix}"
    returning = (
        not ignore_conflicts
        and not when
        and opts.auto_field is not None
        and connection.features.can_return_columns_from_insert
    )
    if also and not returning:
        raise ValueError("this INSERT cannot return more columns")
    if returning:
        sql += f" RETURNING {qn(opts.db_table)}.{qn(opts.auto_field.column)}"
        if also:
            sql += f", {also}"
    return sql, fields, returning


# Fields (these classes exactly) whose pre_save and get_db_prep_save give a str or None back as it
# is: the value's own getattr, then Promise → str and to_python (a str stays itself). Half the CPU
# of a create's parameters (~25 fields a record) went through those calls for nothing. The integer
# fields' methods end in the connection's adapt_integerfield_value.
_STR_AS_IS = (CharField, TextField)
_INTEGERS = (
    IntegerField,
    SmallIntegerField,
    BigIntegerField,
    PositiveIntegerField,
    PositiveSmallIntegerField,
    PositiveBigIntegerField,
)


def db_converter(field: Field, connection) -> Callable[[Any], Any]:
    """`field.get_db_prep_save(value, connection)` as a function of the value, taking for the
    types a row on the hot path holds the last step those methods take (the steps before it give
    such a value back as it is; tests/audit/test_rows.py compares them)."""
    cls, ops = field.__class__, connection.ops
    save = field.get_db_prep_save

    if cls in _STR_AS_IS:
        return lambda value: (
            value if value is None or isinstance(value, str) else save(value, connection)
        )
    if cls in _INTEGERS:
        adapt, internal = ops.adapt_integerfield_value, field.get_internal_type()
        return lambda value: (
            None
            if value is None
            else adapt(value, internal)
            if value.__class__ is int
            else save(value, connection)
        )
    if (
        cls is ForeignKey
        and isinstance(field.target_field, AutoFieldMixin)
        and type(ops).validate_autopk_value is BaseDatabaseOperations.validate_autopk_value
    ):
        # The target's get_db_prep_save: int(value), then as it is.
        return lambda value: (
            value if value is None or value.__class__ is int else save(value, connection)
        )
    if cls is BooleanField:
        return lambda value: (
            value if value is None or value.__class__ is bool else save(value, connection)
        )
    if cls is DateTimeField:
        adapt = ops.adapt_datetimefield_value
        return lambda value: (
            None
            if value is None
            else adapt(value)
            if value.__class__ is datetime.datetime and value.tzinfo is not None
            else save(value, connection)
        )
    if cls is UUIDField:
        native = connection.features.has_native_uuid_field
        return lambda value: (
            (value if native else value.hex)
            if value.__class__ is uuid.UUID
            else save(value, connection)
        )
    if cls is JSONField:
        adapt, encoder = ops.adapt_json_value, field.encoder
        return lambda value: (
            adapt(value, encoder) if value.__class__ in (dict, list) else save(value, connection)
        )
    return lambda value: save(value, connection)


def _needs_pre_save(field: Field) -> bool:
    """Whether `field.pre_save` may give other than the instance's attribute (auto_now, files…)."""
    if type(field).pre_save is Field.pre_save:
        return False
    return not (isinstance(field, DateField) and not field.auto_now and not field.auto_now_add)


def row_converters(connection, fields: tuple) -> tuple:
    """(attname, pre_save or None, converter) per field of `fields`, worked out once per
    connection object (one per thread and alias: the converters use its operations)."""
    known = connection.__dict__.setdefault("_portal_row_converters", {})
    found = known.get(fields)
    if found is None:
        found = known[fields] = tuple(
            (f.attname, f.pre_save if _needs_pre_save(f) else None, db_converter(f, connection))
            for f in fields
        )
    return found


def _params(instance: Model, fields: tuple, connection) -> list:
    params = []
    for attname, pre_save, convert in row_converters(connection, fields):
        value = getattr(instance, attname) if pre_save is None else pre_save(instance, True)
        params.append(convert(value))
    return params


def row_insert(instance: Model, *, using: str = "default", ignore_conflicts: bool = False) -> bool:
    """INSERT `instance` as one statement; its id is set from the database. With
    `ignore_conflicts`, a row that would break a unique constraint is skipped (the id stays
    unset); returns whether a row was written. Raises IntegrityError as save() would."""
    connection = connections[using]
    sql, fields, returning = _insert(type(instance), using, ignore_conflicts)
    params = _params(instance, fields, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        written = ignore_conflicts is False or cursor.rowcount == 1
        if not ignore_conflicts and instance._meta.auto_field is not None:
            instance.pk = cursor.fetchone()[0] if returning else cursor.lastrowid
    if written:
        instance._state.adding = False
        instance._state.db = using
    return written


def row_insert_returning(
    instance: Model, *, also: str, also_params: Sequence = (), using: str = "default"
) -> tuple:
    """INSERT `instance` as row_insert does (its id set from the database) and return the values of
    `also`, SQL expressions the same statement RETURNs after the id (their parameters
    `also_params`): what a writer needs to know besides, without another round trip."""
    connection = connections[using]
    sql, fields, _ = _insert(type(instance), using, False, also=also)
    params = _params(instance, fields, connection)
    params.extend(also_params)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    instance.pk = row[0]
    instance._state.adding = False
    instance._state.db = using
    return tuple(row[1:])


def row_insert_statement(
    instance: Model, *, when: str, using: str = "default", ignore_conflicts: bool = False
) -> tuple[str, list]:
    """The INSERT of `instance` as (sql, params), inserting only if the SQL condition `when` holds
    (`INSERT … SELECT … WHERE when`), for a caller that sends it as part of another statement (a
    data-modifying WITH on PostgreSQL). The instance's id is not set."""
    connection = connections[using]
    sql, fields, _ = _insert(type(instance), using, ignore_conflicts, when)
    return sql, _params(instance, fields, connection)
