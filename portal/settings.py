"""The portal's one settings module: every value comes from the environment (see .env.example)."""

import ipaddress
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from portal.errorreports import sentry_init
from portal.logs import LOG_FORMATS, logging_config
from portal.oidc_settings import csp_form_action, oidc_group_roles

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A developer's .env (written by `make`, git-ignored). Real environment variables win over it.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_bool(name: str, default: bool) -> bool:
    """A boolean that is clearly true or false; anything else stops start-up (healthchecks' envbool)."""
    raw = env.str(name, default="").strip().lower()
    if raw == "":
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of {sorted(_TRUE | _FALSE)}, not {raw!r}.")


def env_secret(name: str, default: str = "") -> str:
    """A secret from NAME, or from the file NAME_FILE points at (Docker secrets)."""
    path = env.str(f"{name}_FILE", default="")
    if path:
        return Path(path).read_text().strip()
    return env.str(name, default=default)


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_secret("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment (or run `make run`, "
            "which writes a development .env)."
        )
    SECRET_KEY = "django-insecure-development-only-key-never-use-in-production"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    # The form renderer (portal.forms) finds Django's widget templates through this app.
    "django.forms",
    "django_htmx",
    "django_filters",
    "axes",
    "django_tasks_db",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "portal.apps.PortalConfig",
    "trunks",
    "trunks.sandbox",
    "trunks.accounts",
]

MIDDLEWARE = [
    "portal.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Inside WhiteNoise, so static files keep their own caching (issue 16).
    "portal.middleware.PrivateCacheControlMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "portal.middleware.SessionRefreshMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Django's AuthenticationMiddleware, the user read from the cache when USER_CACHE is on.
    "portal.user_cache.CachedUserAuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # After OTPMiddleware: a local account that needs its second factor sees only the 2FA pages.
    "portal.middleware.SecondFactorMiddleware",
    "portal.middleware.AbsoluteSessionTimeoutMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Django's, each policy's header text built once (portal/csp.py).
    "portal.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "portal.middleware.HtmxLoginRedirectMiddleware",
    # A password someone else chose must be replaced before anything else (portal.password_change).
    "portal.password_change.PasswordChangeRequiredMiddleware",
    "portal.middleware.InvitationPromptMiddleware",
    # Last, so it can turn a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"

# Every form field renders through templates/forms/field.html.
FORM_RENDERER = "portal.forms.PortalFormRenderer"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
                "portal.context_processors.navigation",
                "portal.context_processors.theme",
                # Django's built-in `csrf` processor's token, masked at a tenth of the cost.
                "portal.csrf.csrf",
            ],
        },
    },
]

WSGI_APPLICATION = "portal.wsgi.application"

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
# Persistent connections on PostgreSQL (issue 17): opening one costs the server a new backend
# process and the request a few milliseconds, which every page (and /healthz) paid when each request
# opened its own. Django keeps one connection per thread: per gunicorn worker (sync) or per worker
# thread (gthread, portal/gunicorn_conf.py), closes it at the end of a request once it is older
# than CONN_MAX_AGE or broken, and with CONN_HEALTH_CHECKS tests a reused one before the request's
# first query (a restarted database costs one reconnect, not an error page). SQLite opens a file:
# nothing to keep.
_db_engine = DATABASES["default"]["ENGINE"]
DATABASES["default"].setdefault(
    "CONN_MAX_AGE",
    env.int("DATABASE_CONN_MAX_AGE", default=60 if "postgresql" in _db_engine else 0),
)
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", env_bool("DATABASE_CONN_HEALTH_CHECKS", True))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the dev server and a test's live server share the file safely.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://portal")}
CACHES["default"].setdefault("KEY_PREFIX", "portal")
_cache_shared = CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
if _cache_shared:
    # The same backend, reusing its redis-py clients (portal/cache.py).
    CACHES["default"]["BACKEND"] = "portal.cache.RedisCache"
# Every page's session and signed-in user read from Redis (one GET each, ~0.1 ms) instead of a query
# each (~0.5 and ~0.3 ms): sessions are still written to the database, which stays the record (a
# miss reads the row); the user's copy is dropped by any write of the row (portal/user_cache.py).
# Only with a cache every process shares: a per-process cache would keep what another process ended.
# The session's read also brings the user's copy, in one round trip (portal/sessions.py). Either
# engine reads the row with its statement compiled once (portal/sessions.py).
SESSION_ENGINE = "portal.sessions" if _cache_shared else "portal.sessions_db"
USER_CACHE = _cache_shared

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# django-axes first: it refuses a locked-out login before the password is even checked.
AUTHENTICATION_BACKENDS = [
    # Password spraying (portal.throttle): per-address and per-username limits, before axes.
    "portal.throttle.LoginThrottleBackend",
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    # Sign-in through the identity provider (portal.oidc); matches no username and password.
    "trunks.accounts.backends.OidcBackend",
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-au"
TIME_ZONE = env.str("TIME_ZONE", default="Australia/Sydney")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "portal.storage.StaticFilesStorage"
        )
    },
}
# Tests and `make run` serve files straight from the finders; production serves the manifest.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# --- Security ---------------------------------------------------------------------------------
# Behind a TLS-terminating proxy, set SECURE_SSL_REDIRECT=false if the proxy redirects for you, and
# SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https so Django knows the original request was HTTPS.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Load balancers and container healthchecks probe over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
_proxy_header = env.list("SECURE_PROXY_SSL_HEADER", default=[])
SECURE_PROXY_SSL_HEADER = tuple(_proxy_header) if len(_proxy_header) == 2 else None
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Strict"
# The __Host- prefix pins a cookie to this host and path and requires Secure.
if SESSION_COOKIE_SECURE:
    SESSION_COOKIE_NAME = "__Host-sessionid"
if CSRF_COOKIE_SECURE:
    CSRF_COOKIE_NAME = "__Host-csrftoken"
# Idle timeout: the session expires this long after the last request.
SESSION_COOKIE_AGE = env.int("SESSION_IDLE_TIMEOUT", default=30 * 60)
# The idle timeout: portal.middleware.SessionRefreshMiddleware saves an active session (pushing its
# expiry SESSION_COOKIE_AGE ahead) when its last save is this many seconds old, not on every request.
SESSION_SAVE_EVERY_REQUEST = False
SESSION_REFRESH_INTERVAL = env.int("SESSION_REFRESH_INTERVAL", default=60)
# Absolute timeout: a session older than this is ended whatever its activity.
SESSION_ABSOLUTE_TIMEOUT = env.int("SESSION_ABSOLUTE_TIMEOUT", default=12 * 60 * 60)

# Login throttling (django-axes): failures are counted per username *and* client address together,
# so an attacker can neither lock a colleague out from elsewhere nor try many passwords for one user.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_LOCKOUT_CALLABLE = "portal.auth.lockout_response"
AXES_CLIENT_IP_CALLABLE = "portal.clientip.client_ip"
# Password spraying (issue 16.7, portal.throttle): failures across usernames from one address, and
# across addresses for one username, each counted over LOGIN_COOLOFF_MINUTES and then forgotten.
LOGIN_ADDRESS_FAILURE_LIMIT = env.int("LOGIN_ADDRESS_FAILURE_LIMIT", default=30)
LOGIN_USERNAME_FAILURE_LIMIT = env.int("LOGIN_USERNAME_FAILURE_LIMIT", default=20)
# How many reverse proxies of our own sit in front of the portal. Each appends the address it saw to
# X-Forwarded-For; only those entries are believed. 0 (the default): REMOTE_ADDR is the client.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# Error pages (issue 15): a failed CSRF check shows the portal's own page, header and menu kept.
CSRF_FAILURE_VIEW = "portal.views.csrf_failure"

SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
}

DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=64 * 1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 200

# --- Sign-in through the company's identity provider (OpenID Connect) ---------------------------
# Unset OIDC_ISSUER: no provider, password log-in only (`make run`). See README "Single sign-on".
OIDC_ISSUER = env.str("OIDC_ISSUER", default="").rstrip("/")
OIDC_CLIENT_ID = env_secret("OIDC_CLIENT_ID")
OIDC_CLIENT_SECRET = env_secret("OIDC_CLIENT_SECRET")
OIDC_SCOPES = env.str("OIDC_SCOPES", default="openid email profile")
OIDC_BUTTON_LABEL = env.str("OIDC_BUTTON_LABEL", default="company sign-in")
# The claim holding the person's groups (Entra ID, Okta, Keycloak: "groups").
OIDC_GROUPS_CLAIM = env.str("OIDC_GROUPS_CLAIM", default="groups")
OIDC_ENABLED = bool(OIDC_ISSUER)
if OIDC_ENABLED and not (OIDC_CLIENT_ID and OIDC_CLIENT_SECRET):
    raise ImproperlyConfigured("OIDC_ISSUER is set: set OIDC_CLIENT_ID and OIDC_CLIENT_SECRET too.")
if OIDC_ENABLED and "openid" not in OIDC_SCOPES.split():
    raise ImproperlyConfigured("OIDC_SCOPES must include openid.")
# Who may still log in with a portal password: all, superusers, or none.
LOCAL_LOGIN = env.str("LOCAL_LOGIN", default="all").strip().lower()
if LOCAL_LOGIN not in {"all", "superusers", "none"}:
    raise ImproperlyConfigured(f"LOCAL_LOGIN must be all, superusers or none, not {LOCAL_LOGIN!r}.")
if LOCAL_LOGIN != "all" and not OIDC_ENABLED:
    raise ImproperlyConfigured(
        f"LOCAL_LOGIN={LOCAL_LOGIN} needs an identity provider (OIDC_ISSUER)."
    )


SECURE_CSP["form-action"] = csp_form_action(OIDC_ISSUER)

# e.g. voice-acme-admins=acme:admin,voice-acme=acme:staff. Applied at every provider sign-in.
OIDC_GROUP_ROLES = oidc_group_roles(env.str("OIDC_GROUP_ROLES", default=""))

# Second factor (django-otp): superusers and tenant admins with a password must enrol one.
SECOND_FACTOR_REQUIRED = env_bool("SECOND_FACTOR_REQUIRED", True)
# The issuer name shown in authenticator apps.
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Crazytel trunk portal")

# --- Crazytel ------------------------------------------------------------------------------------
CRAZYTEL_API_BASE_URL = env.str("CRAZYTEL_API_BASE_URL", default="https://crazytel.io/api/v1")
# Where a tenant's key may be sent (issue 16.9, trunks.tenants.upstream): hosts a tenant's base URL
# may name — exact, or ".example.com" for it and its subdomains — checked when a base URL is saved and
# before every call. Default: Crazytel's own host, and in DEBUG with the sandbox on, this machine
# (where `make run` serves the sandbox). Plain http:// only when CRAZYTEL_UPSTREAM_HTTP_ALLOWED
# (default: DEBUG).
_crazytel_host = urlsplit(CRAZYTEL_API_BASE_URL).hostname or ""
CRAZYTEL_UPSTREAM_HOSTS = env.list(
    "CRAZYTEL_UPSTREAM_HOSTS",
    default=[_crazytel_host]
    + (["127.0.0.1", "localhost", "::1"] if DEBUG and env_bool("SANDBOX_ENABLED", False) else []),
)
CRAZYTEL_UPSTREAM_HTTP_ALLOWED = env_bool("CRAZYTEL_UPSTREAM_HTTP_ALLOWED", DEBUG)
# Seconds: connect timeout, then read timeout.
CRAZYTEL_CONNECT_TIMEOUT = env.float("CRAZYTEL_CONNECT_TIMEOUT", default=5.0)
CRAZYTEL_TIMEOUT = env.float("CRAZYTEL_TIMEOUT", default=20.0)
# Shown on the success page when set; not in Crazytel's API documentation.
CRAZYTEL_SIP_REGISTRAR = env.str("CRAZYTEL_SIP_REGISTRAR", default="")
# --- How a trunk registers (the success page's registration block, issue 15) -------------------
# The registrar's port and transport shown beside CRAZYTEL_SIP_REGISTRAR (not in Crazytel's API).
CRAZYTEL_SIP_PORT = env.int("CRAZYTEL_SIP_PORT", default=5060)
CRAZYTEL_SIP_TRANSPORT = env.str("CRAZYTEL_SIP_TRANSPORT", default="UDP")
# Verified numbers are cached per tenant for this many seconds.
CRAZYTEL_NUMBERS_CACHE_TTL = env.int("CRAZYTEL_NUMBERS_CACHE_TTL", default=300)
# How long the audit log's chart counts and "Who" menu are shared between readers (seconds; the
# chart's counts are also dropped whenever a record is written). 0 turns the sharing off.
AUDIT_CACHE_SECONDS = env.int("AUDIT_CACHE_SECONDS", default=60)
# Crazytel allows 60 requests/minute per key. The headroom is in time, not in count: each token
# comes back CRAZYTEL_RATE_LIMIT_GUARD seconds after its window, which covers the spread between
# a token's grant and the request's arrival at Crazytel (trunks.crazytel.ratelimit; issue 17).
CRAZYTEL_RATE_LIMIT_PER_MINUTE = env.int("CRAZYTEL_RATE_LIMIT_PER_MINUTE", default=60)
CRAZYTEL_RATE_LIMIT_GUARD = env.float("CRAZYTEL_RATE_LIMIT_GUARD", default=1.0)
# The window those requests are counted in (seconds; tests shorten it), and how long a request may
# wait for a token before the person is told when to retry.
CRAZYTEL_RATE_LIMIT_WINDOW = env.float("CRAZYTEL_RATE_LIMIT_WINDOW", default=60.0)
CRAZYTEL_RATE_LIMIT_MAX_WAIT = env.float("CRAZYTEL_RATE_LIMIT_MAX_WAIT", default=1.0)
# Issue 16: of the per-minute budget, this many requests only creates and changes may use (reads
# such as the numbers and Test connection stop short of them), and a refresh of the verified
# numbers asks Crazytel at most once per tenant in this many seconds (others share its answer).
CRAZYTEL_RATE_LIMIT_WRITE_RESERVE = env.int("CRAZYTEL_RATE_LIMIT_WRITE_RESERVE", default=10)
CRAZYTEL_NUMBERS_REFRESH_INTERVAL = env.int("CRAZYTEL_NUMBERS_REFRESH_INTERVAL", default=30)
# After a 429: honour Retry-After up to this many seconds; without one, back off exponentially
# (base, cap; with jitter).
CRAZYTEL_RETRY_AFTER_MAX = env.float("CRAZYTEL_RETRY_AFTER_MAX", default=600.0)
CRAZYTEL_BACKOFF_BASE = env.float("CRAZYTEL_BACKOFF_BASE", default=2.0)
CRAZYTEL_BACKOFF_MAX = env.float("CRAZYTEL_BACKOFF_MAX", default=60.0)
# Circuit breaker: after this many consecutive 5xx from Crazytel, no calls for the cool-off.
CRAZYTEL_BREAKER_THRESHOLD = env.int("CRAZYTEL_BREAKER_THRESHOLD", default=5)
CRAZYTEL_BREAKER_COOLOFF = env.float("CRAZYTEL_BREAKER_COOLOFF", default=30.0)

# Fernet keys for the tenants' API keys at rest, newest first, comma-separated.
CREDENTIALS_ENCRYPTION_KEYS = [
    k.strip() for k in env_secret("CREDENTIALS_ENCRYPTION_KEYS").split(",") if k.strip()
]

# The built-in Crazytel look-alike under /sandbox/api/v1/ (demo and rehearsal only).
SANDBOX_ENABLED = env_bool("SANDBOX_ENABLED", False)
# With the sandbox (the demo), a stand-in registrar so the success page shows how a trunk
# registers: a reserved .test name, where nothing answers SIP (issue 15).
if SANDBOX_ENABLED and not CRAZYTEL_SIP_REGISTRAR:
    CRAZYTEL_SIP_REGISTRAR = "sip.sandbox.test"

# --- Background tasks (django.tasks) ---------------------------------------------------------------
# "database" (django-tasks-db): tasks wait in the portal's own database until a `manage.py worker`
# process, on this machine or any other that reaches the database, takes them. "immediate" runs a
# task inside the request that enqueues it (tests only); "dummy" keeps it and never runs it.
_TASK_BACKENDS = {
    "database": "django_tasks_db.DatabaseBackend",
    "immediate": "django.tasks.backends.immediate.ImmediateBackend",
    "dummy": "django.tasks.backends.dummy.DummyBackend",
}
_tasks_backend = env.str("TASKS_BACKEND", default="database")
if _tasks_backend not in _TASK_BACKENDS:
    raise ImproperlyConfigured(f"TASKS_BACKEND must be one of {sorted(_TASK_BACKENDS)}.")
TASKS = {"default": {"BACKEND": _TASK_BACKENDS[_tasks_backend]}}
# How often each worker's scheduler looks for periodic jobs that are due (seconds; see
# portal/schedules.py). Each period's run is claimed once in the database, however many workers look.
TASKS_SCHEDULER_TICK = env.float("TASKS_SCHEDULER_TICK", default=15.0)

# Issue 16: `check` (and so runserver, migrate and the WSGI start-up) refuses the sandbox without
# DEBUG. Only the benchmarks, which time production settings on loopback, set this.
SANDBOX_ALLOW_WITHOUT_DEBUG = env_bool("SANDBOX_ALLOW_WITHOUT_DEBUG", False)

# Issue 16: error reports (DEBUG's 500 page too) never show a key, a password or their frames.
DEFAULT_EXCEPTION_REPORTER_FILTER = "portal.reporting.SecretsExceptionReporterFilter"

# --- Bulk provisioning ----------------------------------------------------------------------------
# Requests per minute bulk jobs leave to people using the form: bulk takes at most
# CRAZYTEL_RATE_LIMIT_PER_MINUTE minus this from the tenant's shared budget.
BULK_RATE_RESERVE = env.int("BULK_RATE_RESERVE", default=10)
# A working job writes its heartbeat at most this often (the revive sweep re-enqueues a running job
# whose heartbeat is 2 minutes old; a row's call takes at most connect + read timeout, 25 s).
BULK_HEARTBEAT_SECONDS = env.float("BULK_HEARTBEAT_SECONDS", default=5.0)

# --- Logging -------------------------------------------------------------------------------------
# json: one JSON object per line (production; collectors parse it). console: readable lines.
LOG_FORMAT = env.str("LOG_FORMAT", default="console" if DEBUG else "json").strip().lower()
if LOG_FORMAT not in LOG_FORMATS:
    raise ImproperlyConfigured(
        f"LOG_FORMAT must be one of {list(LOG_FORMATS)}, not {LOG_FORMAT!r}."
    )
LOGGING = logging_config(log_format=LOG_FORMAT, level=env.str("LOG_LEVEL", default="INFO"))

# --- Metrics (/metrics for Prometheus) -----------------------------------------------------------
# Answered to `Authorization: Bearer <METRICS_TOKEN>`, or to clients inside these networks (CIDRs,
# comma-separated; the client address as TRUSTED_PROXY_COUNT reads it). Neither set: always 404.
METRICS_TOKEN = env_secret("METRICS_TOKEN")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[])
for _network in METRICS_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"METRICS_ALLOWED_NETWORKS: {_network!r} is not an address or network."
        ) from None

# --- Audit checkpoints ----------------------------------------------------------------------------
# Each tenant's chain head, HMAC-signed with this key (never SECRET_KEY: whoever holds the database
# and the app's secret must not be able to forge one), to the log and appended to this file or
# directory when set (see trunks/audit/checkpoints.py). Required in production (portal.E030).
AUDIT_CHECKPOINT_KEY = env_secret("AUDIT_CHECKPOINT_KEY")
AUDIT_CHECKPOINT_PATH = env.str("AUDIT_CHECKPOINT_PATH", default="")

# --- Error reports (Sentry, optional) ------------------------------------------------------------
SENTRY_DSN = env_secret("SENTRY_DSN")
if SENTRY_DSN:
    sentry_init(
        dsn=SENTRY_DSN,
        environment=env.str("SENTRY_ENVIRONMENT", default="development" if DEBUG else "production"),
        release=env.str("SENTRY_RELEASE", default=""),
    )

# --- E-mail --------------------------------------------------------------------------------------
# Django 6.1's MAILERS (EMAIL_BACKEND and the other EMAIL_* settings are deprecated). The portal
# sends no mail of its own: "default" is for Django's error mails if ADMINS is ever set. In DEBUG
# mail is printed; otherwise it goes to SMTP_HOST (Django's old default: localhost:25).
if DEBUG:
    _mailer = {"BACKEND": "django.core.mail.backends.console.EmailBackend"}
else:
    _mailer = {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": env.str("SMTP_HOST", default="localhost"),
            "port": env.int("SMTP_PORT", default=25),
            "username": env.str("SMTP_USER", default="") or None,
            "password": env_secret("SMTP_PASSWORD") or None,
            "use_tls": env_bool("SMTP_USE_TLS", False),
            "timeout": 10,
        },
    }
MAILERS = {"default": _mailer}

# --- Housekeeping --------------------------------------------------------------------------------
# django-axes' login records (attempts, access and failure logs) older than this are deleted by
# `manage.py axes_prune` / the portal.tasks.axes_records_prune task.
AXES_RECORDS_RETENTION_DAYS = env.int("AXES_RECORDS_RETENTION_DAYS", default=90)
