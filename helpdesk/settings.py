"""Storedesk settings, read from the environment (see README "Configuration")."""

from pathlib import Path

import dj_database_url
import dj_email_url
from django.core.exceptions import ImproperlyConfigured

from helpdesk.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
# Embedded-default state (SQLite file, filesystem broker, beat schedule) lives here, git-ignored.
VAR_DIR = Path(env_str("STOREDESK_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG and env_bool("STOREDESK_REQUIRE_SECRET", False):
        raise ImproperlyConfigured("SECRET_KEY must be set in production")
    # Local runs only: a fixed, obviously-insecure key. `check --deploy` flags it.
    SECRET_KEY = "django-insecure-storedesk-local-only-key-change-me-0123456789abcdef"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
BASE_URL = env_str("BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Where store platforms post webhooks: the hooks service (granian) when it has its own
# address, else the web service, which answers /hooks/ too.
HOOKS_BASE_URL = env_str("HOOKS_BASE_URL", BASE_URL).rstrip("/")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [BASE_URL])
CSRF_FAILURE_VIEW = "helpdesk.views.core.csrf_failure"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "axes",
    "helpdesk",
    "tickets",
    "playbooks",
    "integrations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "helpdesk.middleware.BodySizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "helpdesk.middleware.TenantMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "helpdesk.urls"
WSGI_APPLICATION = "helpdesk.wsgi.application"

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
                "helpdesk.context_processors.shell",
            ],
        },
    }
]

# --- Database: Postgres from DATABASE_URL; otherwise an embedded SQLite file for the demo.
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True
        )
    }
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "storedesk.sqlite3"),
            # WAL + immediate transactions so web, worker and beat can share the file.
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (rate limits, lockout counters): Redis when configured, local memory otherwise.
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "helpdesk.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "sd",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth
AUTH_USER_MODEL = "helpdesk.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "helpdesk.auth_backends.CachedModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
PASSWORD_RESET_TIMEOUT = 60 * 60 * 24

# django-axes: lock an (username, IP) pair after repeated failures.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler" if REDIS_URL else "axes.handlers.database.AxesDatabaseHandler"
AXES_IPWARE_PROXY_COUNT = env_int("PROXY_COUNT", 0)

# --- Security: secure by default; local HTTP runs set DEBUG=1 or SECURE_SSL_REDIRECT=0.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Health probes come from inside (compose, load balancers) over plain HTTP: never redirected.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
_https = SECURE_SSL_REDIRECT or BASE_URL.startswith("https://")
SESSION_COOKIE_SECURE = _https
CSRF_COOKIE_SECURE = _https
SESSION_COOKIE_HTTPONLY = True
# Sessions read from the cache (Redis) and written through to the database.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 60 * 60 * 24 * 14
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365 if _https else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _https
SECURE_HSTS_PRELOAD = _https
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Fernet keys for store credentials at rest, newest first (comma-separated). Rotate by
# prepending a new key and running `manage.py rotate_credentials`. Default: derived from SECRET_KEY.
ENCRYPTION_KEYS = env_list("ENCRYPTION_KEYS", [])

# Request bodies above this answer 413 on the API and webhooks (BodySizeLimitMiddleware).
MAX_BODY_BYTES = env_int("MAX_BODY_BYTES", 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_BODY_BYTES

# --- i18n
LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG and env_bool("STATIC_MANIFEST", False)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True

# --- Email: EMAIL_URL (smtp://user:pass@host:port, submission://…, console:, memory:).
_email = dj_email_url.parse(env_str("EMAIL_URL", "console:" if DEBUG else "smtp://127.0.0.1:25"))
_smtp = _email["EMAIL_BACKEND"].endswith("smtp.EmailBackend")
MAILERS = {
    "default": {
        "BACKEND": _email["EMAIL_BACKEND"],
        "OPTIONS": {
            "host": _email["EMAIL_HOST"],
            "port": _email["EMAIL_PORT"],
            "username": _email["EMAIL_HOST_USER"],
            "password": _email["EMAIL_HOST_PASSWORD"],
            "use_tls": _email["EMAIL_USE_TLS"],
            "use_ssl": _email["EMAIL_USE_SSL"],
            "timeout": 10,
        }
        if _smtp
        else {},
    }
}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Storedesk <no-reply@storedesk.local>")

# --- Celery: Redis when REDIS_URL is set, otherwise kombu's filesystem transport so the
# worker and beat still run with nothing installed.
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": 3600}
else:
    _broker = VAR_DIR / "broker"
    for sub in ("in", "processed"):
        (_broker / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker / "in"),
        "data_folder_out": str(_broker / "in"),
        "processed_folder": str(_broker / "processed"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
# Celery's Django fixup closes every database connection before and after each task (it no
# longer honours CONN_MAX_AGE: celery/celery#9824), so each task paid for a new Postgres
# session, ~2 ms of CPU on both sides: most of a short task such as an inbox drain. With
# this it never does; helpdesk/celery.py closes them around each task as Django does around
# a request instead (close_old_connections: CONN_MAX_AGE and the health checks).
CELERY_DB_REUSE_MAX = 1_000_000_000
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict = {
    # SLA warnings and breaches; the sweep finds due clocks by their indexed due_at, so a
    # late or lost message never loses a breach.
    "sla-sweep": {"task": "tickets.sla_sweep", "schedule": 60.0},
    # Escalation reminders and overdue notices, found by their indexed remind_at/due_at.
    "escalation-sweep": {"task": "tickets.escalation_sweep", "schedule": 60.0},
    # Webhook inbox: re-enqueue deliveries whose message was lost or whose backoff is over.
    "inbox-sweep": {"task": "integrations.sweep_inbox", "schedule": 60.0},
    # Order actions whose task message was lost go back on the queue.
    "order-actions-sweep": {"task": "integrations.sweep_order_actions", "schedule": 60.0},
    # Pull orders changed since the last sync: heals missed or late webhooks.
    "orders-reconcile": {"task": "integrations.reconcile_all", "schedule": 900.0},
    # Customer notices: re-enqueue due queued/scheduled notices (a lost message loses none).
    "notices-sweep": {"task": "integrations.sweep_notices", "schedule": 60.0},
    # Late shipments (no scan, carrier exception, estimate passed) → delay notices, once each.
    "notices-delays": {"task": "integrations.detect_delays", "schedule": 300.0},
}
# Task modules beyond each app's tasks.py.
CELERY_IMPORTS = ["integrations.action_tasks", "integrations.notices_tasks"]
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True

# --- REST API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "helpdesk.api.auth.BearerTokenAuthentication",
        "helpdesk.api.auth.TenantSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["helpdesk.api.permissions.IsTenantMember"],
    "DEFAULT_PAGINATION_CLASS": "helpdesk.api.pagination.CursorPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_THROTTLE_CLASSES": ["helpdesk.api.throttling.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"token": env_str("API_RATE_LIMIT", "600/min")},
    "EXCEPTION_HANDLER": "helpdesk.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Storedesk API",
    "DESCRIPTION": "Help desk for online stores. Authenticate with `Authorization: Bearer <token>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    # Several resources have a `status` or `kind` field with different choices.
    "ENUM_NAME_OVERRIDES": {
        "TicketStatusEnum": "tickets.models.Status",
        "MessageKindEnum": "tickets.models.Message.Kind",
        "OrderActionKindEnum": "integrations.models.OrderAction.Kind",
        "OrderActionStatusEnum": "integrations.models.OrderAction.State",
        "ConnectionStatusEnum": "integrations.models.Connection.State",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
