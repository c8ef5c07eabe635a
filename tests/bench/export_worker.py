"""One export, measured in a process of its own so its peak RSS is the export's and nothing else's.

`python -m tests.bench.export_worker portal URL USERNAME` streams the portal's export through the view;
`python -m tests.bench.export_worker reference` writes every audit row as CSV straight from a
server-side cursor (the floor: the database and the csv module, no portal). Both print one JSON line:
rows, seconds, rows/s, peak RSS before and after.
"""

import csv
import json
import sys
import time

from .harness import peak_rss_mb


class _Null:
    def write(self, value: str) -> int:
        return len(value)


def portal_export(url: str, username: str) -> dict:
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(
        get_user_model().objects.get(username=username),
        backend="django.contrib.auth.backends.ModelBackend",
    )
    baseline = peak_rss_mb()
    started = time.perf_counter()
    response = client.get(url)
    if response.status_code != 200:
        raise SystemExit(f"GET {url} answered {response.status_code}")
    lines = 0
    size = 0
    chunks = response.streaming_content if response.streaming else [response.content]
    for chunk in chunks:
        lines += chunk.count(b"\n")
        size += len(chunk)
    seconds = time.perf_counter() - started
    return {
        "rows": lines - 1,
        "bytes": size,
        "seconds": seconds,
        "streaming": response.streaming,
        "baseline_rss_mb": baseline,
    }


def reference_export() -> dict:
    from django.db import connection, transaction

    from trunks.models import AuditRecord

    columns = [f.column for f in AuditRecord._meta.concrete_fields]
    baseline = peak_rss_mb()
    started = time.perf_counter()
    writer = csv.writer(_Null())
    writer.writerow(columns)
    rows = 0
    with transaction.atomic(), connection.chunked_cursor() as cursor:
        # Newest first, as the portal's export is ordered.
        cursor.execute(
            f"SELECT {', '.join(columns)} FROM {AuditRecord._meta.db_table} "
            "ORDER BY started_at DESC, id DESC"
        )
        while batch := cursor.fetchmany(2000):
            writer.writerows(batch)
            rows += len(batch)
    return {"rows": rows, "seconds": time.perf_counter() - started, "baseline_rss_mb": baseline}


def main(argv: list[str]) -> int:
    from .environment import django_setup

    django_setup()
    result = portal_export(argv[1], argv[2]) if argv[0] == "portal" else reference_export()
    result["rows_per_s"] = result["rows"] / result["seconds"] if result["seconds"] else 0.0
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
