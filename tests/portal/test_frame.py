"""What every page's frame remembers per process (portal.fixed_urls, portal.storage): the same
answers Django gives, and a new answer once what they came from changes."""

import json
import uuid

from django.test import override_settings
from django.urls import reverse, set_script_prefix
from whitenoise.storage import CompressedManifestStaticFilesStorage

from portal.fixed_urls import fixed_url, fixed_url_with
from portal.storage import StaticFilesStorage


def test_a_fixed_url_is_what_reverse_gives():
    for name in ("home", "logout", "password_change", "trunks:create", "audit:list"):
        assert fixed_url(name) == reverse(name)


def test_a_fixed_url_follows_the_script_prefix():
    try:
        set_script_prefix("/portal/")
        assert fixed_url("home") == "/portal/"
    finally:
        set_script_prefix("/")
    assert fixed_url("home") == "/"


@override_settings(ROOT_URLCONF="tests.bench.urls")
def test_a_fixed_url_follows_a_new_urlconf():
    assert fixed_url("bench-base") == "/__bench__/base/"


def test_a_fixed_url_with_an_id_is_what_reverse_gives_and_follows_the_script_prefix():
    some = uuid.uuid4()
    for name, value in [("audit:detail", 7), ("audit:detail", 10**12), ("trunks:attempt", some)]:
        assert fixed_url_with(name, value) == reverse(name, args=[value])
    try:
        set_script_prefix("/portal/")
        prefixed = fixed_url_with("audit:detail", 7)
        assert prefixed.startswith("/portal/") and prefixed == reverse("audit:detail", args=[7])
    finally:
        set_script_prefix("/")
    # Anything else is reverse()'s to write (or refuse).
    assert fixed_url_with("trunks:attempt", str(some)) == reverse("trunks:attempt", args=[some])


def _manifest_storage(tmp_path, cls, paths):
    (tmp_path / "staticfiles.json").write_text(
        json.dumps({"paths": paths, "version": "1.1", "hash": "x"})
    )
    return cls(location=str(tmp_path), base_url="/static/")


@override_settings(DEBUG=False)
def test_a_static_url_is_the_manifests_and_follows_a_new_manifest(tmp_path):
    paths = {"css/portal.css": "css/portal.0123abcd.css", "favicon.svg": "favicon.89ab.svg"}
    ours = _manifest_storage(tmp_path, StaticFilesStorage, paths)
    theirs = _manifest_storage(tmp_path, CompressedManifestStaticFilesStorage, paths)
    for name in paths:
        assert ours.url(name) == ours.url(name) == theirs.url(name)
    ours.hashed_files = {"css/portal.css": "css/portal.4567ef01.css"}  # as collectstatic does
    assert ours.url("css/portal.css") == "/static/css/portal.4567ef01.css"
