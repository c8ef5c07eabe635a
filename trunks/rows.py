"""One model row INSERTed as one SQL statement written once per process, not through the ORM's save
path: for the writes on a create's hot path (its audit records and its Trunk), where building the
statement (the instance's save(), the query compiler) cost more CPU than sending and running it.

The values go through each field's own `pre_save` and `get_db_prep_save`, as `save()` and
`bulk_create()` do, so what is stored is what they would store; a str (or None) for a CharField or
a TextField, which those methods give back as it is, is passed as it is (db_value). No signals are sent: no model
written here has a receiver, and the writes stay explicit in the services that make them.
"""

from functools import cache

from django.db import connections
from django.db.models import CharField, Model, TextField
from django.db.models.constants import OnConflict


@cache
def _insert(
    model: type[Model], alias: str, ignore_conflicts: bool, when: str = ""
) -> tuple[str, tuple, bool]:
    """The statement, the fields it writes, and whether it returns the new row's id."""
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
    if returning:
        sql += f" RETURNING {qn(opts.db_table)}.{qn(opts.auto_field.column)}"
    return sql, fields, returning


# Fields (these classes exactly) whose pre_save and get_db_prep_save give a str or None back as it
# is: the value's own getattr, then Promise → str and to_python (a str stays itself). Half the CPU
# of a create's parameters (~25 fields a record) went through those calls for nothing.
_STR_AS_IS = (CharField, TextField)


def db_value(field, value, connection):
    """field.get_db_prep_save(value, connection), without the calls for a str or None in a
    CharField or TextField."""
    if field.__class__ in _STR_AS_IS and (value is None or value.__class__ is str):
        return value
    return field.get_db_prep_save(value, connection)


def _params(instance: Model, fields: tuple, connection) -> list:
    return [db_value(f, f.pre_save(instance, True), connection) for f in fields]


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


def row_insert_statement(
    instance: Model, *, when: str, using: str = "default", ignore_conflicts: bool = False
) -> tuple[str, list]:
    """The INSERT of `instance` as (sql, params), inserting only if the SQL condition `when` holds
    (`INSERT … SELECT … WHERE when`), for a caller that sends it as part of another statement (a
    data-modifying WITH on PostgreSQL). The instance's id is not set."""
    connection = connections[using]
    sql, fields, _ = _insert(type(instance), using, ignore_conflicts, when)
    return sql, _params(instance, fields, connection)
