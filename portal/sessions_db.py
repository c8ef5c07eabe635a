"""The session engine where no cache is shared (SQLite, local memory): Django's database sessions,
the row read with its statement compiled once (portal.sessions.CompiledSessionRead)."""

from django.contrib.sessions.backends import db

from portal.sessions import CompiledSessionRead


# Named as Django's stores are: the name salts the session data's signature, so sessions written
# by Django's database store and by this one read alike.
class SessionStore(CompiledSessionRead, db.SessionStore):
    pass
