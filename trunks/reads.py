"""Read queries whose SQL is compiled once per database connection, then run with new arguments:
for the reads every signed-in page makes (the reader's tenants and roles), where the ORM's building
of the statement (the QuerySet's clone and filter, the compiler) cost several times sending and
running it (issue 17's profiles).

The statement is Django's own: the QuerySet is built and compiled once, with stand-in values for
the arguments, and each run swaps the arguments into that statement's parameters. Values come back
through the same converters the ORM applies (SQLite's dates and booleans, for one), so a row reads
as the QuerySet's values_list() would give it.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.db import connections
from django.db.models import QuerySet

# Stand-ins for the arguments while compiling: ids no row has, told apart by value. Within a 32-bit
# integer column's range: Django compiles a value out of the column's range to no query at all
# (EmptyResultSet on PostgreSQL).
_STAND_IN_BASE = -(2**31) + 1_000


@dataclass(frozen=True)
class _Argument:
    index: int


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    compiler: object
    converters: dict


class CompiledRead:
    """`build(*arguments)` returns the QuerySet (a values_list()); `rows(*arguments)` runs its SQL.

    The arguments are integer ids (`arguments=2`) or, given as types, ids and strings
    (`arguments=(str,)`), each used as a plain equality or IN value of an integer or text column:
    a stand-in goes through the compiler in its place, so nothing may depend on its value (no
    None, no empty list)."""

    def __init__(self, build: Callable[..., QuerySet], *, arguments: int | tuple[type, ...]):
        self.build = build
        self.kinds = (int,) * arguments if isinstance(arguments, int) else tuple(arguments)
        if not set(self.kinds) <= {int, str}:
            raise ValueError("a compiled read's arguments are ints or strs")

    def _compile(self, using: str) -> _Compiled:
        stand_ins = [
            _STAND_IN_BASE - i if kind is int else f"\x00compiled-read-stand-in-{i}\x00"
            for i, kind in enumerate(self.kinds)
        ]
        compiler = self.build(*stand_ins).query.get_compiler(using)
        sql, params = compiler.as_sql()
        template = tuple(
            _Argument(stand_ins.index(p)) if isinstance(p, int | str) and p in stand_ins else p
            for p in params
        )
        found = {p.index for p in template if isinstance(p, _Argument)}
        if found != set(range(len(self.kinds))):
            raise ValueError("an argument of a compiled read is not a parameter of its SQL")
        converters = compiler.get_converters([column for column, _, _ in compiler.select])
        return _Compiled(sql, template, compiler, converters)

    def rows(self, *ids: int | str, using: str = "default") -> list:
        connection = connections[using]
        # Kept on the connection object (one per thread and alias): the compiler and converters
        # it made belong to it, and go when it does.
        compiled_reads = connection.__dict__.setdefault("_portal_compiled_reads", {})
        compiled = compiled_reads.get(self)
        if compiled is None:
            compiled = compiled_reads[self] = self._compile(using)
        params = [ids[p.index] if isinstance(p, _Argument) else p for p in compiled.params]
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        if compiled.converters:
            return list(compiled.compiler.apply_converters(rows, compiled.converters))
        return rows
