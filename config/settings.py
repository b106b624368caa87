"""Settings, read from the environment (and `.env` when present). See `.env.example`."""

import ipaddress
import os
import sys
import warnings
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

# Development defaults are only allowed with DEBUG on; production refuses to start without real secrets.
_DEV_SECRET_KEY = "dev-insecure-secret-key-do-not-use-in-production"
_DEV_FERNET_KEY = "dev-insecure-fernet-key-do-not-use-in-production"
_missing = [name for name in ("SECRET_KEY", "FERNET_KEYS") if not env.str(name, default="").strip()]
if _missing and not DEBUG:
    raise ImproperlyConfigured(
        f"{' and '.join(_missing)} must be set when DEBUG is off "
        "(see .env.example; generate one with: python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )
if _missing:
    warnings.warn(
        f"DEBUG is on and {', '.join(_missing)} is not set: using insecure development defaults.",
        stacklevel=1,
    )

SECRET_KEY = env.str("SECRET_KEY", default="") or _DEV_SECRET_KEY
# Several keys for rotation: the first encrypts, all decrypt (`manage.py rotate_keys`).
FERNET_KEYS = [k.strip() for k in env.str("FERNET_KEYS", default="").split(",") if k.strip()] or [
    _DEV_FERNET_KEY
]

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[PUBLIC_BASE_URL])

FRESHBOOKS_CLIENT_ID = env.str("FRESHBOOKS_CLIENT_ID", default="")
FRESHBOOKS_CLIENT_SECRET = env.str("FRESHBOOKS_CLIENT_SECRET", default="")
FRESHBOOKS_API_URL = env.str("FRESHBOOKS_API_URL", default="https://api.freshbooks.com").rstrip("/")
FRESHBOOKS_AUTH_URL = env.str("FRESHBOOKS_AUTH_URL", default="https://auth.freshbooks.com").rstrip("/")
ATLASSIAN_CLIENT_ID = env.str("ATLASSIAN_CLIENT_ID", default="")
ATLASSIAN_CLIENT_SECRET = env.str("ATLASSIAN_CLIENT_SECRET", default="")
ATLASSIAN_AUTH_URL = env.str("ATLASSIAN_AUTH_URL", default="https://auth.atlassian.com").rstrip("/")
ATLASSIAN_API_URL = env.str("ATLASSIAN_API_URL", default="https://api.atlassian.com").rstrip("/")
REDIS_URL = env.str("REDIS_URL", default="")
# Vendor URLs typed by users (Jira site URLs) must be https on a public address unless this is on.
# Unset or empty: follows DEBUG (and is on in sandbox mode, below).
ALLOW_LOCAL_VENDOR_URLS = (
    env.bool("ALLOW_LOCAL_VENDOR_URLS") if env.str("ALLOW_LOCAL_VENDOR_URLS", default="").strip() else DEBUG
)

# Sandbox mode: built-in FreshBooks and Jira on loopback (connector/sandbox; `manage.py sandbox` runs them).
# On with SANDBOX=1, or when no vendor credentials are set; never where any is set.
_VENDOR_CREDENTIALS = [
    name
    for name in (
        "FRESHBOOKS_CLIENT_ID",
        "FRESHBOOKS_CLIENT_SECRET",
        "ATLASSIAN_CLIENT_ID",
        "ATLASSIAN_CLIENT_SECRET",
    )
    if env.str(name, default="").strip()
]
SANDBOX = env.bool("SANDBOX") if env.str("SANDBOX", default="").strip() else not _VENDOR_CREDENTIALS
if SANDBOX and _VENDOR_CREDENTIALS:
    raise ImproperlyConfigured(
        f"SANDBOX is on but {', '.join(_VENDOR_CREDENTIALS)} is set: the sandbox never runs where vendor "
        "credentials are set. Unset SANDBOX (or the credentials)."
    )
SANDBOX_STATE_FILE = BASE_DIR / "sandbox-state.json"
if SANDBOX:
    # The sandbox's own OAuth apps (connector/sandbox/freshbooks_auth.py and atlassian.py; public test values).
    FRESHBOOKS_CLIENT_ID, FRESHBOOKS_CLIENT_SECRET = "fb-client-id", "fb-client-secret"
    ATLASSIAN_CLIENT_ID, ATLASSIAN_CLIENT_SECRET = "atl-client-id", "atl-client-secret"

    def _sandbox_url(name, port):
        """Loopback port 8101-8103, or the one a vendor URL setting names on 127.0.0.1 (the sandbox listens
        there); a vendor's real URL (as in .env.example) is never used with the sandbox's client ids."""
        given = env.str(name, default="").rstrip("/")
        return given if given.startswith("http://127.0.0.1:") else f"http://127.0.0.1:{port}"

    FRESHBOOKS_API_URL = FRESHBOOKS_AUTH_URL = _sandbox_url("FRESHBOOKS_API_URL", 8101)
    ATLASSIAN_AUTH_URL = _sandbox_url("ATLASSIAN_AUTH_URL", 8102)
    ATLASSIAN_API_URL = _sandbox_url("ATLASSIAN_API_URL", 8103)
    os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the sandbox speaks plain http on loopback
if SANDBOX and not env.str("ALLOW_LOCAL_VENDOR_URLS", default="").strip():
    ALLOW_LOCAL_VENDOR_URLS = True  # unset: on in sandbox mode too (its vendors are http on loopback)

# Outbound HTTP: seconds to connect / read for every vendor call.
HTTP_TIMEOUT = (env.float("HTTP_CONNECT_TIMEOUT", default=5.0), env.float("HTTP_READ_TIMEOUT", default=30.0))
# Inbound size limits per sender (bytes); larger deliveries are refused with 413 without being read. FreshBooks
# posts a few form fields; Jira embeds the whole issue (description, comments, worklogs) and documents webhook
# payloads of up to 25 MB.
WEBHOOK_MAX_BODY = env.int("WEBHOOK_MAX_BODY", default=64 * 1024)
JIRA_WEBHOOK_MAX_BODY = env.int("JIRA_WEBHOOK_MAX_BODY", default=25 * 1024 * 1024)
# Seconds of clock difference allowed on the iat/nbf/exp claims of inbound delivery tokens (Jira's JWT).
INBOUND_CLOCK_LEEWAY = env.int("INBOUND_CLOCK_LEEWAY", default=30)
# Seconds during which the same signed FreshBooks delivery posted again is a replay: acknowledged, not processed.
WEBHOOK_REPLAY_WINDOW = env.int("WEBHOOK_REPLAY_WINDOW", default=300)
# Seconds a webhook sender may pause while sending its body before the read ends with 408 (under gunicorn):
# a stalled sender cannot hold a web worker.
WEBHOOK_BODY_TIMEOUT = env.float("WEBHOOK_BODY_TIMEOUT", default=10.0)
# Seconds a web process keeps the verified FreshBooks callbacks it read (0: read them for every delivery). A
# change made in another process (a deleted callback, a deactivated tenant) reaches the webhook within this time.
WEBHOOK_VERIFIER_CACHE = env.float("WEBHOOK_VERIFIER_CACHE", default=5.0)
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

# Alerts: mail_admins() sends to ADMINS (comma-separated addresses); EMAIL_URL picks the mail backend
# (django-environ syntax, e.g. smtp+tls://user:pass@smtp.example.com:587; default: SMTP on localhost:25).
ADMINS = [(address, address) for address in env.list("ADMINS", default=[]) if address.strip()]
SERVER_EMAIL = env.str("SERVER_EMAIL", default="ml-connector@localhost")
EMAIL_SUBJECT_PREFIX = env.str("EMAIL_SUBJECT_PREFIX", default="[ml-connector] ")
if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
# Seconds an SMTP connection may take to answer; alert mails are sent from their own task (audit.tasks), so a
# mail server that never answers delays a mail, never a worker processing events.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
# Django's own error mails (a 500 with its settings and request dump) are off: unauthenticated requests (a
# foreign Host header, an oversized form) would each mail ADMINS. ERROR_MAILS=1 mails server errors (500)
# only, at most one per ERROR_MAIL_INTERVAL seconds per process, scrubbed (config.errors).
ERROR_MAILS = env.bool("ERROR_MAILS", default=False)
ERROR_MAIL_INTERVAL = env.int("ERROR_MAIL_INTERVAL", default=600)
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.errors.ScrubbingFilter"

# GET /metrics (Prometheus): loopback callers (not forwarded by a proxy) when METRICS_ALLOW_LOOPBACK, callers
# from METRICS_ALLOWED_IPS (addresses or networks), and requests with "Authorization: Bearer METRICS_BEARER_TOKEN".
# A request carrying any forwarding header (X-Forwarded-For/-Proto/-Host, Forwarded, Via, X-Real-IP) is
# forwarded: METRICS_ALLOWED_IPS then applies to the client named in X-Forwarded-For, and only when the request
# comes from one of METRICS_TRUSTED_PROXIES (addresses or networks); otherwise only the token opens it.
METRICS_ALLOW_LOOPBACK = env.bool("METRICS_ALLOW_LOOPBACK", default=True)
METRICS_BEARER_TOKEN = env.str("METRICS_BEARER_TOKEN", default="")
try:
    METRICS_ALLOWED_IPS = [
        ipaddress.ip_network(a.strip(), strict=False)
        for a in env.list("METRICS_ALLOWED_IPS", default=[])
        if a.strip()
    ]
    METRICS_TRUSTED_PROXIES = [
        ipaddress.ip_network(a.strip(), strict=False)
        for a in env.list("METRICS_TRUSTED_PROXIES", default=[])
        if a.strip()
    ]
except ValueError as exc:
    raise ImproperlyConfigured(f"METRICS_ALLOWED_IPS or METRICS_TRUSTED_PROXIES: {exc}") from exc
# Counters of every web and worker process on this host meet in one directory (prometheus_client's multiprocess
# mode); it must exist before prometheus_client is first imported, which happens after settings load.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="") or str(BASE_DIR / ".metrics")
os.makedirs(PROMETHEUS_MULTIPROC_DIR, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = PROMETHEUS_MULTIPROC_DIR

# Retention: finished events older than this many days lose their payload, record and attempt bodies in a
# daily task (0: never; `manage.py prune_audit` prunes on demand). Ledger links and event metadata stay.
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=0)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "tenants",
    "connector",
    "audit",
]
if SANDBOX:  # the vendor sandbox (connector/sandbox): `manage.py sandbox`, its pages and the admin's banner
    INSTALLED_APPS.append("connector.sandbox")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
            ],
        },
    },
]

if SANDBOX:
    TEMPLATES[0]["OPTIONS"]["context_processors"].append("connector.sandbox.context_processors.admin_context")

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let the web process and the worker share the SQLite file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE"}
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
FORMAT_MODULE_PATH = ["config.formats"]  # times to the second in the admin (config/formats/en/formats.py)

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = PUBLIC_BASE_URL.startswith("https://")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
    # A refused FreshBooks delivery is counted on the account it names at most this often (connector.endpoints
    # .throttling.RejectedDeliveryThrottle): a flood of forged posts is not a write per post.
    "DEFAULT_THROTTLE_RATES": {"webhook_rejected": "1/s"},
    # drf-spectacular documents the operator API (connector/api; its decorated actions need it as the default).
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# The operator API (/api/v1/, connector/api; docs/api.md). Its views set their own DRF classes; these are its knobs.
# Throttling per user (DRF's UserRateThrottle, counted in the default cache): every call, and actions (POST).
API_THROTTLE_RATE = env.str("API_THROTTLE_RATE", default="600/min")
API_ACTION_THROTTLE_RATE = env.str("API_ACTION_THROTTLE_RATE", default="60/min")
SPECTACULAR_SETTINGS = {
    "TITLE": "ml-connector operator API",
    "DESCRIPTION": "Tenants and their health, events and their attempts, replay, rollback and reconcile, under the "
    "admin's permissions. Authenticate with an API token made in the admin: `Authorization: Bearer <token>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",  # served from drf-spectacular-sidecar's static files: no CDN
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "EventStatusEnum": "audit.models.Event.Status",
        "EventSourceEnum": "audit.models.Event.Source",
        "ConnectionStatusEnum": "tenants.models.ConnectionStatus",
        "ReconcileResultEnum": "connector.models.ReconcileState.Result",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "connector.api.schema.add_error_responses",
    ],
}

# django-q2: the ORM broker by default (no extra server); Redis when REDIS_URL is set.
# `retry` must exceed `timeout` so a slow task is never handed to a second worker while still running.
Q_CLUSTER = {
    "name": "ml-connector",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": env.int("Q_TIMEOUT", default=300),
    "retry": env.int("Q_RETRY", default=420),
    "max_attempts": 3,
    # A task that raised (a bug, or the database went away mid-task) stays in the ORM broker and is handed out
    # again after `retry` seconds, up to max_attempts: process_event's claim makes a second run harmless, and
    # an event whose task was dropped would otherwise stay queued until someone replays it.
    "ack_failures": False,
    "catch_up": False,
    # Successful task results are not kept (each event's outcome is on audit.Event): with a positive limit
    # django-q2 reads the whole success table under a row lock to prune it after every task.
    "save_limit": -1,
    # The ORM broker sleeps this long when the queue is empty: the queue wait of an event (e2e latency).
    "poll": env.float("Q_POLL", default=0.1),
    "label": "Task queue",
    "bulk": env.int("Q_BULK", default=1),
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["broker_class"] = "config.queueing.OrmBroker"  # django-q2's ORM broker, fewer round trips

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {
        # django-q2 logs one INFO line per enqueued task: noise on the webhook hot path (one per delivery).
        "no_enqueued_lines": {
            "()": "django.utils.log.CallbackFilter",
            "callback": lambda record: not (record.name == "django-q" and record.msg.startswith("Enqueued")),
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "stream": sys.stderr,
            "filters": ["no_enqueued_lines"],
        },
        "error_mails": {"level": "ERROR", "class": "config.errors.ThrottledErrorMailHandler"},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's own "django" logger mails ADMINS on every error (django.security.DisallowedHost,
        # RequestDataTooBig …): replaced by the console here; server errors mail only with ERROR_MAILS.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.request": {"handlers": ["error_mails"] if ERROR_MAILS else [], "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        # At DEBUG these log token requests and answers (client secret, codes, tokens): never let them.
        "requests_oauthlib": {"level": "WARNING"},
        "oauthlib": {"level": "WARNING"},
    },
}
