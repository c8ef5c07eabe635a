"""What a transactional test's flush leaves: content types and permissions put back from a copy.

After each transactional test (live_server, transaction=True) Django flushes every table and sends
`post_migrate`, whose receivers (contenttypes' create_contenttypes, auth's create_permissions) find
them gone and create every content type and permission again, app by app: about 0.1 CPU-s a test,
and the suite has a few hundred such tests. Both receivers only ever write those rows for the
installed models, so the same rows, taken once from the freshly migrated test database, are put
back instead (two bulk inserts, and their original ids). Anything else a test wrote is flushed as
before.
"""

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management.commands import flush


class ContentTypesRestorer:
    """Stands in for `emit_post_migrate_signal` in Django's flush command while installed."""

    def __init__(self, alias: str = "default"):
        self.content_types = list(ContentType.objects.using(alias).values())
        self.permissions = list(Permission.objects.using(alias).values())
        self.original = flush.emit_post_migrate_signal

    def __call__(self, verbosity, interactive, db, **kwargs):
        if not self.content_types:  # nothing to restore from (a database built without them)
            return self.original(verbosity, interactive, db, **kwargs)
        ContentType.objects.clear_cache()
        ContentType.objects.using(db).bulk_create(ContentType(**r) for r in self.content_types)
        Permission.objects.using(db).bulk_create(Permission(**r) for r in self.permissions)
        return None

    def install(self) -> None:
        flush.emit_post_migrate_signal = self

    def uninstall(self) -> None:
        flush.emit_post_migrate_signal = self.original
