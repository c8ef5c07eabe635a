"""The audit log's exports: exactly the filtered records, streamed in constant memory, in the page's
columns and order, as CSV (spreadsheet-safe) or JSON Lines."""

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import date

from .columns import AUDIT_COLUMNS

# A cell starting with one of these is run as a formula by spreadsheets (OWASP CSV injection):
# the export writes it with a leading apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# Output is written to a buffer and handed on in pieces of about this size, not a line at a time.
EXPORT_PIECE = 64 * 1024


def _csv_stream(rows: Iterable[tuple]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([heading for _key, heading in AUDIT_COLUMNS])
    formula = frozenset(_FORMULA_START)
    writerow = writer.writerow
    for row in rows:
        # The number (first) is an integer, or empty while pending; every other column is text to make spreadsheet-safe.
        writerow(
            [row[0]]
            + [
                ("" if value is None else f"'{value}" if value[:1] in formula else value)
                for value in row[1:]
            ]
        )
        if buffer.tell() >= EXPORT_PIECE:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _jsonl_stream(rows: Iterable[tuple]) -> Iterator[str]:
    keys = [key for key, _heading in AUDIT_COLUMNS]
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    piece: list[str] = []
    size = 0
    for row in rows:
        line = dumps(dict(zip(keys, row, strict=True)))
        piece.append(line)
        size += len(line) + 1
        if size >= EXPORT_PIECE:
            yield "\n".join(piece) + "\n"
            piece = []
            size = 0
    if piece:
        yield "\n".join(piece) + "\n"


def export_filename(*, tenant, date_from: date | None, date_to: date | None, ext: str) -> str:
    who = tenant.slug if tenant is not None else "all-tenants"
    if date_from and date_to:
        span = f"{date_from:%Y-%m-%d}-to-{date_to:%Y-%m-%d}"
    elif date_from:
        span = f"from-{date_from:%Y-%m-%d}"
    elif date_to:
        span = f"to-{date_to:%Y-%m-%d}"
    else:
        span = "all-dates"
    return f"audit-{who}-{span}.{ext}"


EXPORT_FORMATS = {
    "csv": ("text/csv; charset=utf-8", _csv_stream),
    "jsonl": ("application/x-ndjson; charset=utf-8", _jsonl_stream),
}
