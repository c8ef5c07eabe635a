"""The signed-in user without a query on every page: Django's AuthenticationMiddleware, reading the
user row from the cache when the cache holds a copy no write has replaced.

What is kept, per user: the row's fields except the password hash (never copied out of the
database: a copy's `password` is a deferred field, read from the database if anything asks for it,
and left out of a save), and the session auth hash (what Django keeps in the session, an HMAC of
the password hash) it was read with. Under a generation of that user's bumped after any save or
delete of the row commits (a changed password, `is_active`, `is_superuser`, a new log-in's
`last_login`), so a copy read before a write is never used after it.

A copy is used only when the session's auth hash equals it exactly and the session names a backend
still configured; in every other case (no copy, a hash made with a fallback secret, a mismatch,
a cache error) the user is read from the database, and Django's own get_user decides whenever the
row does not match the session exactly (and ends the session if it must). Without the cache
(USER_CACHE off) every page reads the row that way: its statement compiled once, not per page.
"""

import functools
import logging
import uuid

from django.conf import settings
from django.contrib import auth
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, get_user_model, load_backend
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, router, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils.crypto import constant_time_compare
from django.utils.functional import SimpleLazyObject

from portal.cache import cache_get_many
from portal.sessions import SESSION_USERS, user_cache_keys
from trunks.reads import CompiledRead

logger = logging.getLogger(__name__)

# Long enough to spare the queries of a person at work, short enough that nothing unforeseen
# (a write that bypasses save(), which the portal has none of) lasts.
USER_CACHE_SECONDS = 60


def _fields() -> tuple[str, ...]:
    return _fields_of(get_user_model())


@functools.cache
def _fields_of(model) -> tuple[str, ...]:
    """What a copy keeps of `model`'s row: its fields but the password hash (once per model)."""
    return tuple(f.attname for f in model._meta.concrete_fields if f.attname != "password")


# The user row with every field (the password hash too: the session's auth hash is an HMAC of it),
# by id, with its SQL compiled once: ModelBackend.get_user's `get(pk=…)` built it on every page
# read from the database (issue 17).
_USER_ROW = CompiledRead(
    lambda user_id: (
        get_user_model()
        ._default_manager.filter(pk=user_id)
        .values_list(*(f.attname for f in get_user_model()._meta.concrete_fields))
    ),
    arguments=1,
)


def _user_from_database(request, *, user_id, backend_path: str, session_hash: str):
    """The session's user read from the database: the row through the compiled read when the
    session's backend reads users as ModelBackend does (a user it may authenticate, by id) and the
    session's auth hash equals the row's exactly; in every other case Django's get_user decides
    (fallback secrets, ending the session, other backends)."""
    backend = load_backend(backend_path)
    if type(backend).get_user is not ModelBackend.get_user or not isinstance(user_id, int):
        return auth.get_user(request)
    User = get_user_model()
    alias = router.db_for_read(User)
    rows = _USER_ROW.rows(user_id, using=alias)
    if rows:
        user = User.from_db(alias, [f.attname for f in User._meta.concrete_fields], rows[0])
        if backend.user_can_authenticate(user) and constant_time_compare(
            session_hash, user.get_session_auth_hash()
        ):
            return user
    return auth.get_user(request)


def user_from_session(request):
    """The request's user: from the cache when it may be, else from the database."""
    try:
        user_id = auth._get_user_session_key(request)
        backend_path = request.session[BACKEND_SESSION_KEY]
        session_hash = request.session.get(HASH_SESSION_KEY)
    except KeyError:
        return auth.get_user(request)  # nobody signed in
    if backend_path not in settings.AUTHENTICATION_BACKENDS or not session_hash:
        return auth.get_user(request)
    if not settings.USER_CACHE:
        return _user_from_database(
            request, user_id=user_id, backend_path=backend_path, session_hash=session_hash
        )
    generation_key, user_key = user_cache_keys(user_id)
    # Read with the session, in its round trip, when this process knew whose it is
    # (portal.sessions); used once, and only for that user.
    prefetched = getattr(request.session, "user_prefetched", None)
    request.session.user_prefetched = None
    SESSION_USERS.note(request.session.session_key, user_id)
    try:
        if prefetched is not None and prefetched[0] == user_id:
            found = prefetched[1]
        else:
            found = cache_get_many(cache, [generation_key, user_key])
        generation = found.get(generation_key)
        if generation is None:
            cache.add(generation_key, uuid.uuid4().hex, None)
            generation = cache.get(generation_key)
    except Exception:
        logger.warning("user cache: unavailable, reading the user", exc_info=True)
        return _user_from_database(
            request, user_id=user_id, backend_path=backend_path, session_hash=session_hash
        )
    stored = found.get(user_key)
    if (
        isinstance(stored, tuple)
        and len(stored) == 3
        and stored[0] == generation
        and constant_time_compare(session_hash, stored[1])
    ):
        return get_user_model().from_db(DEFAULT_DB_ALIAS, _fields(), stored[2])
    user = _user_from_database(
        request, user_id=user_id, backend_path=backend_path, session_hash=session_hash
    )
    if user.is_authenticated and user.pk == user_id and generation is not None:
        values = tuple(getattr(user, name) for name in _fields())
        try:
            cache.set(
                user_key, (generation, user.get_session_auth_hash(), values), USER_CACHE_SECONDS
            )
        except Exception:
            logger.warning("user cache: could not store", exc_info=True)
    return user


class CachedUserAuthenticationMiddleware(AuthenticationMiddleware):
    """AuthenticationMiddleware with request.user from user_from_session."""

    def process_request(self, request):
        super().process_request(request)

        def user():
            if not hasattr(request, "_cached_user"):
                request._cached_user = user_from_session(request)
            return request._cached_user

        request.user = SimpleLazyObject(user)


def user_cache_drop(user_id) -> None:
    """Replace the user's generation now and again once the current transaction commits: a
    request that read the row before the commit may have stored it in between."""

    def bump() -> None:
        try:
            cache.set(user_cache_keys(user_id)[0], uuid.uuid4().hex, None)
        except Exception:
            logger.warning("user cache: could not drop user %s", user_id, exc_info=True)

    bump()
    transaction.on_commit(bump)


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="portal.user_cache.saved")
@receiver(post_delete, sender=settings.AUTH_USER_MODEL, dispatch_uid="portal.user_cache.deleted")
def _user_changed(sender, instance, **kwargs) -> None:
    user_cache_drop(instance.pk)
