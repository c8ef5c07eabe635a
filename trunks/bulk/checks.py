"""Reading an uploaded spreadsheet (CSV, UTF-8 with or without BOM, `;` or `,`) and checking every
row with the trunk form's own rules and the tenant's verified numbers (one definition)."""

import csv
import hashlib
import io
from dataclasses import dataclass, field
from typing import Any

from django.views.decorators.debug import sensitive_variables

from trunks.crazytel.contract import TRUNK_FIELD, TRUNK_FIELD_NAMES
from trunks.provisioning.forms import TrunkCreateForm
from trunks.provisioning.numbers import VerifiedNumbers

MAX_ROWS = 1000
MAX_BYTES = 1024 * 1024
REQUIRED_COLUMNS = ("caller_id_number",)
COLUMNS = tuple(TRUNK_FIELD_NAMES)


@dataclass
class CheckedRow:
    index: int  # the spreadsheet's row number (the header is row 1)
    data: dict[str, Any]
    password: str = field(default="", repr=False)  # "" → one is generated at confirm
    errors: list[str] = field(default_factory=list)


@dataclass
class CheckedFile:
    name: str
    sha256: str
    rows: list[CheckedRow] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # problems of the whole file

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.rows) and not any(r.errors for r in self.rows)

    @property
    def bad_rows(self) -> int:
        return sum(1 for r in self.rows if r.errors)


def bulk_template_csv() -> str:
    """The template: the API's field names as the header, and one example row."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    example = {name: "" for name in COLUMNS}
    example.update(description="Desk 1", enabled="true", softphone_show_balance="true")
    writer.writerow([example[name] for name in COLUMNS])
    return out.getvalue()


def _decode(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


@sensitive_variables("raw", "text", "values")
def bulk_file_check(*, raw: bytes, name: str, numbers: VerifiedNumbers) -> CheckedFile:
    """Every problem of the file and of each row, named by row and column. Nothing is stored."""
    checked = CheckedFile(name=name[:255] or "pasted rows", sha256=hashlib.sha256(raw).hexdigest())
    if len(raw) > MAX_BYTES:
        checked.errors.append(
            f"The file is {len(raw):,} bytes; the limit is {MAX_BYTES:,} bytes (1 MB). "
            "Split it into smaller files."
        )
        return checked
    text = _decode(raw)
    if text is None:
        checked.errors.append(
            "The file is not UTF-8 text. In Excel choose “CSV UTF-8 (Comma delimited)”; "
            "in Google Sheets, File → Download → CSV."
        )
        return checked
    if "\x00" in text:
        checked.errors.append("The file holds binary data: upload a CSV file, not a spreadsheet.")
        return checked
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        checked.errors.append("The file is empty: it needs a header row and at least one row.")
        return checked
    delimiter = ";" if lines[0].count(";") > lines[0].count(",") else ","
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)
    try:
        table = list(reader)
    except csv.Error as error:
        checked.errors.append(f"The file cannot be read as CSV: {error}.")
        return checked
    header = [h.strip().lstrip("\ufeff").lower() for h in table[0]]
    unknown = [h for h in header if h and h not in COLUMNS]
    if unknown:
        checked.errors.append(
            "Unknown column(s) in row 1: "
            + ", ".join(f"“{h}”" for h in unknown)
            + ". The columns are Crazytel's field names: "
            + ", ".join(COLUMNS)
            + " (download the template)."
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        checked.errors.append(f"Missing column(s) in row 1: {', '.join(missing)}.")
    doubled = sorted({h for h in header if h and header.count(h) > 1})
    if doubled:
        checked.errors.append(f"Column(s) named twice in row 1: {', '.join(doubled)}.")
    body = table[1:]
    if not body:
        checked.errors.append("The file has a header but no rows.")
    if len(body) > MAX_ROWS:
        checked.errors.append(
            f"The file has {len(body):,} rows; the limit is {MAX_ROWS:,}. Split it into smaller files."
        )
    if checked.errors:
        return checked

    seen: dict[tuple, int] = {}
    for offset, values in enumerate(body, start=2):
        row = _row_check(index=offset, header=header, values=values, numbers=numbers)
        key = tuple(sorted(row.data.items()))
        if key in seen and not row.errors:
            row.errors.append(f"Row {offset} repeats row {seen[key]} (the same settings).")
        seen.setdefault(key, offset)
        checked.rows.append(row)
    return checked


@sensitive_variables("values", "raw", "password")
def _row_check(
    *, index: int, header: list[str], values: list[str], numbers: VerifiedNumbers
) -> CheckedRow:
    if len(values) > len(header):
        return CheckedRow(
            index=index,
            data={},
            errors=[f"Row {index} has {len(values)} cells but the header has {len(header)}."],
        )
    raw = {h: v.strip() for h, v in zip(header, values, strict=False) if h}
    password = raw.pop("password", "") if "password" in raw else ""
    defaults = {
        name: ("true" if TRUNK_FIELD[name].default else "")
        for name in COLUMNS
        if TRUNK_FIELD[name].type is bool
    }
    form_data = {**defaults, **{k: v for k, v in raw.items() if v != ""}}
    # Blank password: one is generated at confirm with the trunk-password generator; check the
    # other fields with a placeholder that meets every rule.
    form_data["password"] = password or "Placeholder1"
    form_data["submission_token"] = "bulk"  # the form's own token is for the form page only
    form = TrunkCreateForm(form_data, numbers=numbers)
    errors = []
    if form.is_valid():
        data = {k: v for k, v in form.upstream_data().items() if k != "password"}
    else:
        data = {k: v for k, v in raw.items()}
        for name, messages in form.errors.items():
            column = name if name != "__all__" else ""
            for message in messages:
                errors.append(f"Row {index}, column {column}: {message}" if column else message)
    return CheckedRow(index=index, data=data, password=password, errors=errors)
