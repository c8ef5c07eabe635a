"""Browser-side hardening: CSP on every response, safe htmx config, security headers, cookies, no |safe."""

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.http import HttpResponse
from django.test import Client, override_settings
from django.urls import path

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _boom(request):
    raise RuntimeError("an unexpected failure in a view")


def _fragment(request):
    """What an htmx endpoint returns: a bare fragment, no <head>."""
    return HttpResponse('<tr class="row"><td>fragment</td></tr>')


@pytest.fixture
def extra_urls(settings):
    """The portal's URLs plus a view that fails, so the 500 page can be checked too."""
    import types

    import portal.urls

    module = types.ModuleType("hardening_test_urls")
    module.urlpatterns = [
        *portal.urls.urlpatterns,
        path("boom/", _boom),
        path("fragment/", _fragment),
    ]
    sys.modules[module.__name__] = module
    settings.ROOT_URLCONF = module.__name__
    yield
    del sys.modules[module.__name__]


def csp_of(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no CSP on {response.status_code} {response.get('Content-Type')}"
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def assert_strict_csp(response):
    csp = csp_of(response)
    everything = " ".join(" ".join(v) for v in csp.values())
    assert "'unsafe-inline'" not in everything
    assert "'unsafe-eval'" not in everything
    assert "*" not in everything.split()
    assert csp["default-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert "'self'" in csp["script-src"]
    assert set(csp["script-src"]) <= {"'self'"} | {
        s for s in csp["script-src"] if s.startswith("'nonce-")
    }
    return csp


class _Scan(HTMLParser):
    """Collects what CSP would block: inline scripts without the nonce, style attributes, handlers."""

    def __init__(self):
        super().__init__()
        self.scripts: list[dict] = []
        self.inline_styles: list[str] = []
        self.handlers: list[str] = []
        self.style_blocks: list[dict] = []
        self.metas: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script":
            self.scripts.append(attributes)
        if tag == "style":
            self.style_blocks.append(attributes)
        if tag == "meta" and "name" in attributes:
            self.metas[attributes["name"]] = attributes.get("content", "")
        for name, value in attrs:
            if name == "style":
                self.inline_styles.append(f"<{tag} style={value!r}>")
            if name.startswith("on"):
                self.handlers.append(f"<{tag} {name}>")
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.handlers.append(f"<{tag} {name}=javascript:>")


def assert_page_obeys_its_csp(response):
    """Every script is from self or carries this response's nonce; no inline style or handler."""
    csp = assert_strict_csp(response)
    nonces = {s[len("'nonce-") : -1] for s in csp["script-src"] if s.startswith("'nonce-")}
    scan = _Scan()
    scan.feed(response.content.decode())
    for script in scan.scripts:
        if "src" in script:
            src = script["src"]
            assert src.startswith("/") and not src.startswith("//"), f"script from elsewhere: {src}"
        elif script.get("type") != "application/json":
            assert script.get("nonce") in nonces, f"inline script without the nonce: {script}"
    assert not scan.inline_styles, scan.inline_styles
    assert not scan.handlers, scan.handlers
    assert not scan.style_blocks, "an inline <style> block, blocked by style-src 'self'"
    return scan


# --- CSP on every kind of response --------------------------------------------------------------


def test_the_login_page_has_a_strict_csp_with_a_nonce_on_its_scripts(client, db):
    response = client.get("/accounts/login/")
    csp = assert_strict_csp(response)
    nonce = [s for s in csp["script-src"] if s.startswith("'nonce-")]
    assert len(nonce) == 1
    html = response.content.decode()
    assert f'nonce="{nonce[0][7:-1]}"' in html
    assert_page_obeys_its_csp(response)


def test_each_response_gets_a_fresh_nonce(client, db):
    first = csp_of(client.get("/accounts/login/"))["script-src"]
    second = csp_of(client.get("/accounts/login/"))["script-src"]
    assert first != second


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/audit/",
        "/accounts/confirm-password/?next=/",
        "/admin/",
        "/admin/auth/user/",
        "/admin/auth/user/add/",
        "/admin/auth/group/add/",
        "/admin/trunks/tenant/",
        "/admin/trunks/tenant/add/",
        "/tenants/",
        "/tenants/new/",
        "/admin/axes/accessattempt/",
        "/admin/password_change/",
    ],
)
def test_logged_in_pages_and_the_admin_obey_the_csp(client, root, url):
    client.force_login(root)
    # "/" sends each person to their first page (for root, /tenants/ once it exists).
    response = client.get(url, follow=True)
    assert response.status_code == 200, url
    assert_page_obeys_its_csp(response)


def test_the_admin_change_form_for_a_user_obeys_the_csp(client, root, charlie):
    client.force_login(root)
    response = client.get(f"/admin/auth/user/{charlie.pk}/change/")
    assert response.status_code == 200
    assert_page_obeys_its_csp(response)


def test_an_htmx_partial_carries_the_csp(client, root, extra_urls):
    client.force_login(root)
    response = client.get("/fragment/", headers={"HX-Request": "true"})
    assert_strict_csp(response)


@pytest.mark.parametrize("status", [404, 500, 403, 429])
def test_error_responses_carry_the_csp(db, extra_urls, charlie, settings, status):
    settings.DEBUG = False
    client = Client(raise_request_exception=False, enforce_csrf_checks=True)
    if status == 404:
        client.force_login(charlie)
        response = client.get("/no-such-page/")
    elif status == 500:
        client.force_login(charlie)
        response = client.get("/boom/")
    elif status == 403:
        response = client.post("/accounts/login/", {"username": "x", "password": "y"})
    else:
        for _ in range(settings.AXES_FAILURE_LIMIT):
            response = client.get("/accounts/login/")
            token = response.cookies[settings.CSRF_COOKIE_NAME].value
            response = client.post(
                "/accounts/login/",
                {"username": "charlie", "password": "wrong", "csrfmiddlewaretoken": token},
            )
    assert response.status_code == status
    assert_page_obeys_its_csp(response)
    assert b"an unexpected failure" not in response.content


def test_the_csrf_failure_page_explains_itself(db):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "x", "password": "y"})
    assert response.status_code == 403
    assert b"This form has expired" in response.content


def test_healthz_and_static_files_carry_the_csp(client, db):
    assert_strict_csp(client.get("/healthz"))


# --- htmx configuration -------------------------------------------------------------------------


def test_htmx_is_configured_safely(client, charlie):
    client.force_login(charlie)
    scan = _Scan()
    scan.feed(client.get("/").content.decode())
    config = json.loads(scan.metas["htmx-config"])
    assert config["selfRequestsOnly"] is True
    assert config["allowEval"] is False
    assert config["allowScriptTags"] is False
    assert config["historyCacheSize"] == 0
    # htmx would otherwise inject an inline <style>, which the CSP blocks.
    assert config["includeIndicatorStyles"] is False


def test_the_served_htmx_knows_those_settings():
    """A renamed option would be silently ignored: check the htmx build django-htmx serves reads
    each one."""
    source = Path(finders.find("django_htmx/htmx-2.min.js")).read_text()
    for option in (
        "selfRequestsOnly",
        "allowEval",
        "allowScriptTags",
        "historyCacheSize",
        "includeIndicatorStyles",
    ):
        assert option in source


# --- Security headers ---------------------------------------------------------------------------


def test_security_headers_are_set(client, db):
    response = client.get("/accounts/login/")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_hsts_is_sent_over_https_when_configured(client, db):
    with override_settings(
        SECURE_HSTS_SECONDS=31536000, SECURE_HSTS_INCLUDE_SUBDOMAINS=True, SECURE_SSL_REDIRECT=False
    ):
        response = client.get("/accounts/login/", secure=True)
    assert response["Strict-Transport-Security"].startswith("max-age=31536000; includeSubDomains")


# --- Production settings (a fresh interpreter with a production environment) ---------------------

PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "production-like-secret-key-for-the-settings-test-0123456789abcdef",
    "ALLOWED_HOSTS": "portal.example.com",
    "CREDENTIALS_ENCRYPTION_KEYS": "kKsjS4zkziZ5ev24xZ9gh_K9-BHTe76ldVHWE2flX-o=",
    "SANDBOX_ENABLED": "false",
}

# The settings module alone: no app's ready() touches settings, so django.setup() (a second of
# importing every app) would change none of these values.
_DUMP = """
import json
from django.conf import settings as s
names = ["SESSION_COOKIE_NAME", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY",
         "SESSION_COOKIE_SAMESITE", "SESSION_COOKIE_PATH", "SESSION_COOKIE_DOMAIN",
         "CSRF_COOKIE_NAME", "CSRF_COOKIE_SECURE", "CSRF_COOKIE_SAMESITE", "CSRF_COOKIE_PATH",
         "CSRF_COOKIE_DOMAIN", "CSRF_COOKIE_HTTPONLY", "SECURE_HSTS_SECONDS",
         "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_SSL_REDIRECT", "SECURE_CONTENT_TYPE_NOSNIFF",
         "X_FRAME_OPTIONS", "SECURE_REFERRER_POLICY", "DEBUG"]
print(json.dumps({n: getattr(s, n) for n in names}))
"""


@pytest.fixture(scope="module")
def production_settings():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DEBUG"))}
    env.update(PRODUCTION_ENV, DJANGO_SETTINGS_MODULE="portal.settings")
    # Real environment variables win over the developer's .env, so these are what production sees.
    done = subprocess.run(
        [sys.executable, "-c", _DUMP], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_production_cookies_are_host_prefixed_secure_httponly_and_samesite(production_settings):
    s = production_settings
    assert s["DEBUG"] is False
    assert s["SESSION_COOKIE_NAME"] == "__Host-sessionid"
    assert s["CSRF_COOKIE_NAME"] == "__Host-csrftoken"
    assert s["SESSION_COOKIE_SECURE"] and s["CSRF_COOKIE_SECURE"]
    assert s["SESSION_COOKIE_HTTPONLY"]
    assert s["SESSION_COOKIE_SAMESITE"] in ("Lax", "Strict")
    assert s["CSRF_COOKIE_SAMESITE"] in ("Lax", "Strict")
    # __Host- cookies must have Path=/ and no Domain, or browsers drop them.
    assert s["SESSION_COOKIE_PATH"] == s["CSRF_COOKIE_PATH"] == "/"
    assert s["SESSION_COOKIE_DOMAIN"] is None and s["CSRF_COOKIE_DOMAIN"] is None


def test_production_sends_hsts_and_redirects_to_https(production_settings):
    s = production_settings
    assert s["SECURE_HSTS_SECONDS"] >= 31536000
    assert s["SECURE_HSTS_INCLUDE_SUBDOMAINS"]
    assert s["SECURE_SSL_REDIRECT"]
    assert s["SECURE_CONTENT_TYPE_NOSNIFF"]
    assert s["X_FRAME_OPTIONS"] == "DENY"


def test_production_cookies_reach_the_browser_with_those_attributes(
    production_settings, charlie, password
):
    cookie_settings = {
        k: v for k, v in production_settings.items() if k.startswith(("SESSION_", "CSRF_"))
    }
    with override_settings(**cookie_settings, SECURE_SSL_REDIRECT=False):
        client = Client()
        response = client.post(
            "/accounts/login/", {"username": "charlie", "password": password}, secure=True
        )
        assert response.status_code == 302
        session = response.cookies["__Host-sessionid"]
        assert session["secure"] and session["httponly"] and session["path"] == "/"
        assert session["samesite"] == "Lax" and not session["domain"]
        csrf = client.get("/accounts/login/", secure=True).cookies["__Host-csrftoken"]
        assert csrf["secure"] and csrf["samesite"] == "Strict" and csrf["path"] == "/"


# --- No |safe or mark_safe on user or upstream text ---------------------------------------------

UNSAFE = re.compile(
    r"\|\s*safe\b|\|\s*safeseq\b|\bmark_safe\s*\(|\bSafeString\s*\(|autoescape\s+off|"
    r"\bhtml_safe\b|\bformat_html\s*\(\s*[a-zA-Z_]"
)
SCANNED = ["templates", "trunks", "portal"]
# (relative path, the exact line) -> why that use is safe. Keep this short, and say why.
ALLOWED: dict[tuple[str, str], str] = {
    # The audit log's chart is written out in Python for speed (issue 6): it holds only numbers,
    # dates and our own escaped status labels. (Its table rows use format_html_join.)
    (
        "trunks/audit/chart.py",
        "return mark_safe(  # noqa: S308 (numbers, dates and escaped labels only)",
    ): "chart markup: numbers, dates and escaped labels only",
    # The audit log's rows and its filter menus, written out in Python for speed (issue 17): every
    # value from a record, a key or a label goes through html.escape, as Django's escape() does.
    (
        "trunks/audit/views.py",
        'return mark_safe("\\n".join(out))  # noqa: S308 (every record value escaped by _text)',
    ): "audit rows: every record value escaped",
    (
        "trunks/audit/filters.py",
        "return mark_safe(  # noqa: S308 (every key and label escaped by _escape)",
    ): "filter menus: every key and label escaped",
    (
        "trunks/audit/filters.py",
        "return mark_safe(  # noqa: S308 (the name, the value and every attribute escaped)",
    ): "filter inputs: the name, the value and every attribute escaped",
    # The trunk form's fragment rendered once (issue 17): the template engine's own (escaped)
    # markup, with this request's CSRF and submission tokens, escaped, in place of its marks.
    (
        "trunks/provisioning/rendered.py",
        'return mark_safe("".join(spliced))  # noqa: S308 (the template\'s markup, values escaped)',
    ): "the form's fragment and a create's result panel: the template engine's markup between "
    "marks, each request's values escaped as {{ value }} escapes them (_escaped)",
}


def _unsafe_uses():
    found = []
    for top in SCANNED:
        for file in sorted((ROOT / top).rglob("*")):
            if file.suffix not in (".html", ".py", ".txt") or "migrations" in file.parts:
                continue
            for line in file.read_text(encoding="utf-8").splitlines():
                if UNSAFE.search(line):
                    found.append((str(file.relative_to(ROOT)), line.strip()))
    return found


def test_no_template_or_code_marks_text_safe_without_a_written_reason():
    unexplained = [use for use in _unsafe_uses() if use not in ALLOWED]
    assert not unexplained, (
        "Autoescaping is the portal's XSS defence: do not mark user or upstream text safe. "
        f"If a use is truly safe, add it to ALLOWED with the reason: {unexplained}"
    )


def test_the_scan_finds_what_it_looks_for(tmp_path):
    samples = [
        "{{ x|safe }}",
        "{{ x | safe }}",
        "{{ xs|safeseq }}",
        "mark_safe(text)",
        "{% autoescape off %}",
        "format_html(template)",
        "SafeString(s)",
    ]
    assert all(UNSAFE.search(s) for s in samples)
    assert not UNSAFE.search('format_html("<b>{}</b>", name)')
    assert not UNSAFE.search("{{ x|safe_name }}")
