"""The session row read with its statement compiled once (portal/sessions.py, portal/sessions_db.py):
what Django's database store reads, no more and no less."""

from datetime import timedelta

import pytest
from django.contrib.sessions.backends import cached_db, db
from django.contrib.sessions.models import Session
from django.utils import timezone

from portal import sessions, sessions_db

STORES = [sessions_db.SessionStore, sessions.SessionStore]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("ours", "djangos"),
    [(sessions_db.SessionStore, db.SessionStore), (sessions.SessionStore, cached_db.SessionStore)],
)
def test_a_session_django_wrote_reads_alike_in_the_portals_store_and_back(ours, djangos):
    written = djangos()
    written["who"] = "charlie"
    written.create()
    assert ours(written.session_key).load() == {"who": "charlie"}

    mine = ours()
    mine["who"] = "alice"
    mine.create()
    assert djangos(mine.session_key).load() == {"who": "alice"}
    assert Session.objects.get(session_key=mine.session_key).get_decoded() == {"who": "alice"}


@pytest.mark.django_db
@pytest.mark.parametrize("store", STORES)
def test_an_expired_row_reads_as_no_session_and_its_key_is_dropped(store):
    written = db.SessionStore()
    written["who"] = "charlie"
    written.create()
    key = written.session_key
    Session.objects.filter(session_key=key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    read = store(key)
    assert read._get_session_from_db() is None
    assert read.session_key is None


@pytest.mark.django_db
@pytest.mark.parametrize("store", STORES)
def test_an_unknown_key_reads_as_no_session(store):
    read = store("k" * 32)
    assert read._get_session_from_db() is None and read.session_key is None


@pytest.mark.django_db
@pytest.mark.parametrize("store", STORES)
def test_a_live_row_reads_as_the_orm_reads_it(store):
    written = db.SessionStore()
    written["who"] = "charlie"
    written.create()
    row = store(written.session_key)._get_session_from_db()
    expected = Session.objects.get(session_key=written.session_key)
    assert (row.session_key, row.session_data, row.expire_date) == (
        expected.session_key,
        expected.session_data,
        expected.expire_date,
    )
