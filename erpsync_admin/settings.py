"""Django settings, read from the environment (see the README's configuration table).

Nothing here needs a server on a fresh machine: without ``DATABASE_URL`` and
``CELERY_BROKER_URL`` the app uses SQLite files under ``var/``.
"""

from __future__ import annotations

import zoneinfo
from datetime import timedelta
from pathlib import Path

from cryptography.fernet import Fernet
from csp.constants import NONE, SELF
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
    # Requests per minute one API token may make (docs/api.md); past that the API answers 429 with Retry-After.
    ERPSYNC_API_RATE_PER_MINUTE = env.integer("ERPSYNC_API_RATE_PER_MINUTE", 120, minimum=1)
    # Paths whose answers are JSON even when the request is refused before any view (core.middleware).
    ERPSYNC_JSON_PATHS = ("/api/v1/",)
    # A worker waits at most this long for one whole answer from a connector (a hanging connector fails the call).
    ERPSYNC_JOB_TIMEOUT = env.integer("ERPSYNC_JOB_TIMEOUT", 60, minimum=1, maximum=3600)
    # The first retry of a run that met a passing fault waits this long; each further retry waits twice as long.
    ERPSYNC_RETRY_DELAY = env.integer("ERPSYNC_RETRY_DELAY", 5, minimum=1, maximum=300)
    # The ERP tab waits at most this long for each connector's live values (all connections at once).
    ERPSYNC_ERP_TAB_TIMEOUT = env.integer("ERPSYNC_ERP_TAB_TIMEOUT", 2, minimum=1, maximum=30)
    # Where Sync Connectors may be (host, host:port or *.domain); empty allows any host on the internet. Internal
    # addresses (loopback, private, link-local, cloud metadata) are allowed only for hosts named here.
    ERPSYNC_CONNECTOR_HOSTS = env.hosts("ERPSYNC_CONNECTOR_HOSTS", [])
    # A running run holds a lease this long, which its worker renews (every third of it) while it works; a run
    # whose lease ran out has lost its worker and is taken back by the sweeper (every half lease) or by its
    # redelivered message, and goes on from its last committed batch.
    ERPSYNC_RUN_LEASE_SECONDS = env.integer("ERPSYNC_RUN_LEASE_SECONDS", 30, minimum=2, maximum=300)
    # A run still "queued" this long after it was written (its message was lost some way the sweeper could not
    # see) is sent again by the sweeper.
    ERPSYNC_RUN_STUCK_AFTER = env.integer("ERPSYNC_RUN_STUCK_AFTER", CELERY_TASK_TIME_LIMIT + 60, minimum=5)
    # Bulk runs (Sync all, Resync from CRM, automatic sync) are split into parts of this many links, which any
    # worker takes on; each part is one task, so no bulk run is bounded by one task's time limit.
    ERPSYNC_PART_SIZE = env.integer("ERPSYNC_PART_SIZE", 1000, minimum=1, maximum=100_000)
    ERPSYNC_HEARTBEAT_SECONDS = env.integer("ERPSYNC_HEARTBEAT_SECONDS", 30, minimum=1, maximum=600)
    # Clients at these addresses read /metrics and the detail of /health/ready/ without logging in. Loopback only
    # in development: behind a reverse proxy on the same machine, every request would come from loopback.
    ERPSYNC_MONITORING_NETWORKS = env.networks(
        "ERPSYNC_MONITORING_NETWORKS", ["127.0.0.0/8", "::1/128"] if DEBUG else []
    )
    # A scraper sending "Authorization: Bearer <token>" reads /metrics from anywhere.
    ERPSYNC_METRICS_TOKEN = env.secret("ERPSYNC_METRICS_TOKEN", min_length=16)
    # Each Celery worker serves its own connector-call metrics on this port (0: not served).
    ERPSYNC_WORKER_METRICS_PORT = env.integer("ERPSYNC_WORKER_METRICS_PORT", 0, minimum=0, maximum=65535)
    # Sync log rows older than this many days are deleted by the hourly prune task; 0 keeps them for ever.
    ERPSYNC_SYNC_LOG_RETENTION_DAYS = env.integer("ERPSYNC_SYNC_LOG_RETENTION_DAYS", 365, minimum=0, maximum=36500)
    # A deleted ERP connection can be restored for this many days; then the hourly task deletes it for good, with
    # its links, sync log and imports. 0 keeps deleted connections until purged by hand.
    ERPSYNC_DELETED_CONNECTION_DAYS = env.integer("ERPSYNC_DELETED_CONNECTION_DAYS", 30, minimum=0, maximum=36500)
    # The hour of the night (in TIME_ZONE) at which connections that reconcile every night are reconciled.
    ERPSYNC_RECONCILE_HOUR = env.integer("ERPSYNC_RECONCILE_HOUR", 2, minimum=0, maximum=23)
    # A plan of bulk work (Sync all or Resync from CRM) older than this many hours must be made again to be approved.
    ERPSYNC_PLAN_MAX_AGE_HOURS = env.integer("ERPSYNC_PLAN_MAX_AGE_HOURS", 24, minimum=1, maximum=720)
    # Alerts are e-mailed through this mail server (Django's EMAIL_* settings).
    EMAIL_HOST = env.text("EMAIL_HOST", "localhost")
    EMAIL_PORT = env.integer("EMAIL_PORT", 25, minimum=1, maximum=65535)
    EMAIL_HOST_USER = env.text("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = env.text("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env.flag("EMAIL_USE_TLS", False)
    EMAIL_USE_SSL = env.flag("EMAIL_USE_SSL", False)
    if EMAIL_USE_TLS and EMAIL_USE_SSL:
        raise ConfigError(
            "EMAIL_USE_SSL",
            "1",
            "turn on EMAIL_USE_TLS (STARTTLS, usually port 587) or EMAIL_USE_SSL (usually port 465), not both",
        )
    # A mail server that does not answer must not hold an alert evaluation, or the page sending a test alert.
    EMAIL_TIMEOUT = env.integer("EMAIL_TIMEOUT", 10, minimum=1, maximum=120)
    DEFAULT_FROM_EMAIL = env.text("DEFAULT_FROM_EMAIL", "erpsync@localhost")
    if "@" not in DEFAULT_FROM_EMAIL:
        raise ConfigError("DEFAULT_FROM_EMAIL", DEFAULT_FROM_EMAIL, "use an e-mail address, e.g. erpsync@example.com")
    SERVER_EMAIL = DEFAULT_FROM_EMAIL
    # Where users reach the app (https://crm.example.com): alerts link to the page to look at.
    ERPSYNC_SITE_URL = env.http_url("ERPSYNC_SITE_URL")
    # Where Sync Connectors reach the app, for change notifications (protocol v1.1): sent to each connector that
    # takes them with SaveConnection. Without it (nor ERPSYNC_SITE_URL) connectors are not asked to notify.
    ERPSYNC_PUBLIC_URL = env.http_url("ERPSYNC_PUBLIC_URL") or ERPSYNC_SITE_URL
    # Seconds a sync started by a change (a connector's notification, a linked record saved) waits for more changes
    # to join it.
    ERPSYNC_CHANGE_SYNC_DELAY = env.integer("ERPSYNC_CHANGE_SYNC_DELAY", 2, minimum=0, maximum=60)
    # A linked CRM record saved (not by a sync) syncs its links within seconds while automatic sync is on.
    ERPSYNC_SYNC_ON_SAVE = env.flag("ERPSYNC_SYNC_ON_SAVE", True)
    # Change notifications each Sync Connector may send per minute; more are answered 429 with a retry_after.
    ERPSYNC_NOTIFY_RATE_LIMIT = env.integer("ERPSYNC_NOTIFY_RATE_LIMIT", 600, minimum=1, maximum=100_000)
    LOG_LEVEL = env.choice("LOG_LEVEL", "INFO", ["DEBUG", "INFO", "WARNING", "ERROR"])
    SECURE_SSL_REDIRECT = env.flag("SECURE_SSL_REDIRECT", not DEBUG)
    # How many reverse proxies stand in front of the app, each setting X-Forwarded-Proto and appending to
    # X-Forwarded-For. Only then are those headers believed: from a client they are whatever it chose to send.
    ERPSYNC_TRUSTED_PROXIES = env.integer("ERPSYNC_TRUSTED_PROXIES", 0, minimum=0, maximum=5)
    # Login throttling (docs/operations.md, Login throttling): this many failed log-ins in a row for one user name
    # from one address lock that pair out for the cool-off.
    ERPSYNC_LOGIN_FAILURE_LIMIT = env.integer("ERPSYNC_LOGIN_FAILURE_LIMIT", 5, minimum=1, maximum=100)
    ERPSYNC_LOGIN_COOLOFF_MINUTES = env.integer("ERPSYNC_LOGIN_COOLOFF_MINUTES", 15, minimum=1, maximum=24 * 60)
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
    "csp",
    "guardian",
    "axes",
    # django-ninja: the automation API's static files and docs template
    "ninja",
    "erpsync_admin",
    "core",
    "crm",
    "connectors",
    "connections",
    "alerts",
    "monitoring",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Outside everything that may answer on its own (the 400 of malformed input, the lockout page): every answer
    # carries the Content-Security-Policy.
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # After LocaleMiddleware, so that its 400 page speaks the user's language; before anything reads the input.
    "core.middleware.RefuseMalformedInput",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a refused log-in into the lockout page.
    "axes.middleware.AxesMiddleware",
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
    # Named after the database, so that test runs against different SQLite files do not share one.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{Path(DATABASES['default']['NAME']).name}")}
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # First: it refuses a locked-out user name and address before any password is checked. It needs the request,
    # so authenticate() must be given one (the log-in forms do; tests use force_login or pass a request).
    "axes.backends.AxesStandaloneBackend",
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

# django-axes: failures are counted per user name *and* client address. By user name alone, anyone could lock the
# administrator out; by address alone, one person's typos would lock out a whole office behind one NAT address.
AXES_FAILURE_LIMIT = ERPSYNC_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=ERPSYNC_LOGIN_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True  # a successful log-in forgets the failures before it
AXES_HTTP_RESPONSE_CODE = 429
AXES_CLIENT_IP_CALLABLE = "erpsync_admin.login.client_address"
AXES_LOCKOUT_CALLABLE = "erpsync_admin.login.locked_out"
# Failures are kept (AccessAttempt, until the cool-off passes or an admin resets them); successful log-ins are not
# logged by axes: a table of every log-in's address would grow for ever with personal data and nothing reading it.
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False  # no banner at every process start; failed log-ins and lockouts are still logged

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
# Only a proxy in front may say the request came over https; from anyone else the header means nothing.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if ERPSYNC_TRUSTED_PROXIES else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp) on every page: scripts, styles and everything else from the app's own origin
# only; no inline script, style or event handler, no plug-ins, no framing, forms posted only to the app. A value that
# slipped past validation into a page can then still not run.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
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
    # Every half lease, so that a run whose worker died goes on within 1.5 leases of its last renewal.
    "sweep-stuck-runs": {
        "task": "connections.sweep_stuck_runs",
        "schedule": ERPSYNC_RUN_LEASE_SECONDS / 2,
        "options": {"expires": ERPSYNC_RUN_LEASE_SECONDS / 2},
    },
    "automatic-sync": {"task": "connections.automatic_sync_tick", "schedule": 60.0, "options": {"expires": 55}},
    "evaluate-alerts": {"task": "alerts.evaluate", "schedule": 60.0, "options": {"expires": 55}},
    "worker-heartbeat": {
        "task": "connections.worker_heartbeat",
        "schedule": float(ERPSYNC_HEARTBEAT_SECONDS),
        "options": {"expires": ERPSYNC_HEARTBEAT_SECONDS},
    },
    # Hourly, a minute's work at most each time: a backlog is worked off over several runs, never in one long one.
    "prune-sync-log": {"task": "connections.prune_sync_log", "schedule": 3600.0, "options": {"expires": 3000}},
    # Hourly: ERP connections deleted more than ERPSYNC_DELETED_CONNECTION_DAYS ago are deleted for good.
    "purge-deleted-connections": {
        "task": "connections.purge_deleted_connections",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
    # Every 10 minutes: within ERPSYNC_RECONCILE_HOUR, each connection that reconciles every night and has not
    # been reconciled for 20 hours is.
    "reconcile-nightly": {"task": "connections.reconcile_tick", "schedule": 600.0, "options": {"expires": 550}},
}
