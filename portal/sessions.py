"""Sessions over the shared cache (Django's cached_db) whose read also brings the signed-in user's
cached copy, in the same round trip (issue 17: a signed-in page read the session, then the user,
one Redis round trip each); and the session row read with its SQL compiled once per connection,
for every store that reads the row (both engines here: `portal.sessions` with a shared cache,
`portal.sessions_db` without one).

The user a session belongs to is known only once the session is read. This process notes it for
each session it serves (SessionUsers, bounded); the next read of that session asks the cache for
the session and for that user's generation and copy together. portal.user_cache uses the copy only
if the session read names that same user, and then checks it exactly as a copy read on its own
(generation, session auth hash); otherwise, or with no note, it reads the user as before. Nothing
is kept but the guess of which user to fetch: the session and the user's copy are read from the
cache on every request.
"""

import threading
from collections import OrderedDict

from django.conf import settings
from django.contrib.sessions.backends import cached_db
from django.contrib.sessions.models import Session
from django.core.cache import DEFAULT_CACHE_ALIAS
from django.db import router
from django.utils import timezone

from portal.cache import cache_get_many
from trunks.reads import CompiledRead


def user_cache_keys(user_id) -> tuple[str, str]:
    """The cache keys of a user's generation and of their copy (portal.user_cache)."""
    return f"auth:user-generation:{user_id}", f"auth:user:{user_id}"


class SessionUsers:
    """Session key → the user id this process last saw signed in with it (thread-safe, the
    oldest dropped after `max_entries`): which user copy to fetch with the session."""

    def __init__(self, *, max_entries: int):
        self.max_entries = max_entries
        self._users: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session_key: str | None):
        return self._users.get(session_key) if session_key else None

    def note(self, session_key: str | None, user_id) -> None:
        if not session_key or self._users.get(session_key) == user_id:
            return
        with self._lock:
            self._users[session_key] = user_id
            while len(self._users) > self.max_entries:
                self._users.popitem(last=False)


SESSION_USERS = SessionUsers(max_entries=10_000)


# The session row by key; what Django's store reads with `Session.objects.get(session_key=…,
# expire_date__gt=now)` on every request whose session is not in a cache (issue 17: building that
# statement cost four times running it).
_SESSION_ROW = CompiledRead(
    lambda session_key: Session.objects.filter(session_key=session_key).values_list(
        "session_data", "expire_date"
    ),
    arguments=(str,),
)


class CompiledSessionRead:
    """The session row read as Django's database store reads it (the row for this key, if it
    has not expired; none otherwise, and the key forgotten), with the statement compiled once."""

    def _get_session_from_db(self):
        rows = _SESSION_ROW.rows(self.session_key, using=router.db_for_read(Session))
        if rows and rows[0][1] > timezone.now():
            return Session(
                session_key=self.session_key, session_data=rows[0][0], expire_date=rows[0][1]
            )
        self._session_key = None
        return None


class SessionStore(CompiledSessionRead, cached_db.SessionStore):
    """cached_db's store; a read also fetches the noted user's generation and copy, kept as
    `user_prefetched` = (user id, {key: value found}) for portal.user_cache."""

    user_prefetched: tuple | None = None

    def load(self):
        user_id = SESSION_USERS.get(self.session_key)
        if (
            user_id is None
            or not settings.USER_CACHE
            or settings.SESSION_CACHE_ALIAS != DEFAULT_CACHE_ALIAS
        ):
            user_keys = ()
        else:
            user_keys = user_cache_keys(user_id)
        try:
            found = cache_get_many(self._cache, [self.cache_key, *user_keys])
        except Exception:
            return super().load()  # as cached_db: an unreadable cache reads the row
        data = found.get(self.cache_key)
        if data is None:
            return super().load()  # not in the cache: the row, as cached_db reads it
        if user_keys:
            self.user_prefetched = (user_id, {key: found[key] for key in user_keys if key in found})
        return data
