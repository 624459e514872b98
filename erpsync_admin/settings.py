"""Django settings, read from the environment (see the README's configuration table).

Nothing here needs a server on a fresh machine: without ``DATABASE_URL`` and
``CELERY_BROKER_URL`` the app uses SQLite files under ``var/``.
"""

from __future__ import annotations

import zoneinfo
from pathlib import Path

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from .env import ConfigError, Env

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
env = Env()


def _dev_fernet_key() -> str:
    """A key kept under var/ so that development secrets stay readable across restarts."""
    VAR_DIR.mkdir(exist_ok=True)
    path = VAR_DIR / "dev-fernet.key"
    if not path.exists():
        path.write_bytes(Fernet.generate_key())
        path.chmod(0o600)
    return path.read_text().strip()


try:
    DEBUG = env.flag("DEBUG", False)

    SECRET_KEY = env.text("SECRET_KEY", "")
    if not SECRET_KEY:
        if not DEBUG:
            raise ConfigError("SECRET_KEY", "", "set a long random value (DEBUG is off, so no default is used)")
        SECRET_KEY = "django-insecure-development-only-never-use-in-production"  # noqa: S105
    # Keys that still verify sessions and signed values while a new SECRET_KEY is rolled out (docs/operations.md).
    SECRET_KEY_FALLBACKS = env.items("SECRET_KEY_FALLBACKS", [])

    ALLOWED_HOSTS = env.items("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
    CSRF_TRUSTED_ORIGINS = env.items("CSRF_TRUSTED_ORIGINS", [])

    DATABASES = {"default": env.database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'erpsync.sqlite3'}")}

    CELERY_BROKER_URL = env.broker("CELERY_BROKER_URL", f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}")
    CELERY_TASK_TIME_LIMIT = env.integer("CELERY_TASK_TIME_LIMIT", 900, minimum=10)
    CELERY_TASK_SOFT_TIME_LIMIT = env.integer("CELERY_TASK_SOFT_TIME_LIMIT", 840, minimum=5)
    if CELERY_TASK_SOFT_TIME_LIMIT >= CELERY_TASK_TIME_LIMIT:
        raise ConfigError(
            "CELERY_TASK_SOFT_TIME_LIMIT",
            str(CELERY_TASK_SOFT_TIME_LIMIT),
            f"must be lower than CELERY_TASK_TIME_LIMIT ({CELERY_TASK_TIME_LIMIT})",
        )

    ERPSYNC_FERNET_KEYS_FROM_DEV_FILE = env.text("ERPSYNC_FERNET_KEYS", "") == ""
    if ERPSYNC_FERNET_KEYS_FROM_DEV_FILE and not DEBUG:
        raise ConfigError("ERPSYNC_FERNET_KEYS", "", "set one or more Fernet keys (DEBUG is off, so none is generated)")
    ERPSYNC_FERNET_KEYS = env.fernet_keys(
        "ERPSYNC_FERNET_KEYS", [] if not ERPSYNC_FERNET_KEYS_FROM_DEV_FILE else [_dev_fernet_key()]
    )

    LANGUAGE_CODE = env.choice("LANGUAGE_CODE", "en", ["en", "sv"])
    TIME_ZONE = env.text("TIME_ZONE", "Europe/Stockholm")
    if TIME_ZONE not in zoneinfo.available_timezones():
        raise ConfigError("TIME_ZONE", TIME_ZONE, "use an IANA time zone name such as Europe/Stockholm or UTC")

    ERPSYNC_CONNECTOR_TIMEOUT = env.integer("ERPSYNC_CONNECTOR_TIMEOUT", 15, minimum=1, maximum=120)
    # A worker waits at most this long for one whole answer from a connector (a hanging connector fails the call).
    ERPSYNC_JOB_TIMEOUT = env.integer("ERPSYNC_JOB_TIMEOUT", 60, minimum=1, maximum=3600)
    # The first retry of a run that met a passing fault waits this long; each further retry waits twice as long.
    ERPSYNC_RETRY_DELAY = env.integer("ERPSYNC_RETRY_DELAY", 5, minimum=1, maximum=300)
    # The ERP tab waits at most this long for each connector's live values (all connections at once).
    ERPSYNC_ERP_TAB_TIMEOUT = env.integer("ERPSYNC_ERP_TAB_TIMEOUT", 2, minimum=1, maximum=30)
    # Where Sync Connectors may be (host, host:port or *.domain); empty allows any host.
    ERPSYNC_CONNECTOR_HOSTS = env.hosts("ERPSYNC_CONNECTOR_HOSTS", [])
    # A run still "running" this long after it started (its worker died), or still "queued" this long after it
    # was written (its message was lost), is sent again by the sweeper.
    ERPSYNC_RUN_STUCK_AFTER = env.integer("ERPSYNC_RUN_STUCK_AFTER", CELERY_TASK_TIME_LIMIT + 60, minimum=5)
    ERPSYNC_HEARTBEAT_SECONDS = env.integer("ERPSYNC_HEARTBEAT_SECONDS", 30, minimum=1, maximum=600)
    LOG_LEVEL = env.choice("LOG_LEVEL", "INFO", ["DEBUG", "INFO", "WARNING", "ERROR"])
    SECURE_SSL_REDIRECT = env.flag("SECURE_SSL_REDIRECT", not DEBUG)
    # Preloading puts the whole domain on browsers' HTTPS-only list for months: the domain owner's decision.
    SECURE_HSTS_PRELOAD = env.flag("SECURE_HSTS_PRELOAD", False)
except ConfigError as error:
    # ImproperlyConfigured stops manage.py, gunicorn and celery alike, with this message on top.
    raise ImproperlyConfigured(f"Configuration error: {error}") from None

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "guardian",
    "erpsync_admin",
    "crm",
    "connectors",
    "connections",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "erpsync_admin.urls"
WSGI_APPLICATION = "erpsync_admin.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "erpsync_admin.context_processors.navigation",
            ],
        },
    }
]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while a worker writes; IMMEDIATE transactions take the write
    # lock up front so concurrent writers wait (up to the timeout) instead of failing mid-transaction.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # A file, not memory, so that worker processes started by the tests see the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-erpsync.sqlite3")}
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "crm:company-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGES = [("en", _("English")), ("sv", _("Swedish"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Celery: JSON only, tasks acknowledged after they finish so a killed worker's task is redelivered.
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True  # pages read job rows, never the result backend
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
if CELERY_BROKER_URL.startswith("redis"):
    # Redis redelivers unacknowledged tasks after this long; it must exceed the longest task.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 300}

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = 0 if DEBUG else 31536000
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Without SECURE_HSTS_PRELOAD, check --deploy would warn on every deployment about a choice made on purpose.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # httpx logs every request at INFO; connector calls are recorded in runs and the sync log instead.
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}

CELERY_BEAT_SCHEDULE = {
    "sweep-stuck-runs": {"task": "connections.sweep_stuck_runs", "schedule": 60.0, "options": {"expires": 55}},
    "automatic-sync": {"task": "connections.automatic_sync_tick", "schedule": 60.0, "options": {"expires": 55}},
    "worker-heartbeat": {
        "task": "connections.worker_heartbeat",
        "schedule": float(ERPSYNC_HEARTBEAT_SECONDS),
        "options": {"expires": ERPSYNC_HEARTBEAT_SECONDS},
    },
}
