"""What a transactional test's flush leaves: content types and permissions put back from a copy.

After each transactional test (live_server, transaction=True) Django flushes every table and sends
`post_migrate`, whose receivers (contenttypes' create_contenttypes, auth's create_permissions) find
them gone and create every content type and permission again, app by app: about 0.1 CPU-s a test,
and the suite has a few hundred such tests. Both receivers only ever write those rows for the
installed models, so the first flush of a database runs them, the rows they wrote are kept, and
every later flush puts the same rows back instead (two bulk inserts, with the same ids). Anything
else a test wrote is flushed as before.
"""

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management.commands import flush


class ContentTypesRestorer:
    """Stands in for `emit_post_migrate_signal` in Django's flush command while installed."""

    def __init__(self):
        self.original = flush.emit_post_migrate_signal
        self.rows: dict[str, tuple[list[dict], list[dict]]] = {}  # by database alias

    def __call__(self, verbosity, interactive, db, **kwargs):
        if db not in self.rows:
            self.original(verbosity, interactive, db, **kwargs)
            self.rows[db] = (
                list(ContentType.objects.using(db).values()),
                list(Permission.objects.using(db).values()),
            )
            return
        content_types, permissions = self.rows[db]
        ContentType.objects.clear_cache()
        ContentType.objects.using(db).bulk_create(ContentType(**r) for r in content_types)
        Permission.objects.using(db).bulk_create(Permission(**r) for r in permissions)

    def install(self) -> None:
        flush.emit_post_migrate_signal = self

    def uninstall(self) -> None:
        flush.emit_post_migrate_signal = self.original
