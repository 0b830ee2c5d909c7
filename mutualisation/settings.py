"""Settings of Mutualis, read from the environment (django-environ).

One file for every environment: behaviour is switched by environment variables, never by a
production-only module. With ``DJANGO_DEBUG`` off (the default) the settings are production-safe
and ``manage.py check --deploy`` reports nothing.

Variables (see README.md, "Configuration"):
    DJANGO_DEBUG            "true" for local development only (default: false)
    DJANGO_SECRET_KEY       required when DEBUG is off
    DJANGO_ALLOWED_HOSTS    comma-separated host names (default: localhost,127.0.0.1)
    DATABASE_URL            default: SQLite file var/mutualis.sqlite3
    DJANGO_DB_LOCK_TIMEOUT  seconds a write waits for another before giving up (default: 20)
    DJANGO_STATIC_ROOT      where collectstatic writes (default: var/staticfiles)
    CELERY_BROKER_URL       optional; without it background tasks run in-process
    MUTUALIS_CACHE_URL      optional Redis (redis://…): a cache shared by every process (the
                            API's throttling counts); without it, each process has its own
    DATABASE_REPLICA_URL    optional read replica for the reports (MUTUALIS_REPLICA_VIEWS)
    DJANGO_DB_PGBOUNCER     "true" behind PgBouncer in transaction mode
    MUTUALIS_S3_BUCKET      optional; files in an S3-compatible bucket (MUTUALIS_S3_* below)
    EMAIL_URL               mail server of the notifications (default: smtp://localhost:25)
    MUTUALIS_SITE_URL       public address of the site, for the links in e-mails
See docs/deployment.md for the scale-out.
"""

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from mutualisation import deployment

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# A developer's git-ignored .env (written by `make run`: DJANGO_DEBUG=true) fills in what the
# real environment does not set; production has no such file and stays strict.
environ.Env.read_env(env.str("DJANGO_ENV_FILE", default=str(BASE_DIR / ".env")), overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)

if DEBUG:
    SECRET_KEY = env("DJANGO_SECRET_KEY", default="dev-only-insecure-key-never-used-with-debug-off")
else:
    SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
    if len(SECRET_KEY) < 50:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set to a random string of at least 50 characters "
            "when DJANGO_DEBUG is off."
        )

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_tables2",
    "django_filters",
    "django_htmx",
    "simple_history",
    "import_export",
    "rules.apps.AutodiscoverRulesConfig",
    "axes",
    "csp",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "mutualisation",
    "conventions",
    "costing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "mutualisation.middleware.RefuseNulCharactersMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "mutualisation.middleware.PrivateResponsesMiddleware",
    "mutualisation.middleware.BusyDatabaseMiddleware",
    # Only with a read replica: marks the report views' reads (mutualisation.routers).
    *(
        ["mutualisation.routers.ReportsOnReplicaMiddleware"]
        if env.str("DATABASE_REPLICA_URL", default="")
        else []
    ),
    # Last, as django-axes requires: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "mutualisation.urls"
WSGI_APPLICATION = "mutualisation.wsgi.application"

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
                "mutualisation.context_processors.navigation",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'mutualis.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=0)
# Two requests (or a request and the Celery worker) writing at once: the second waits for the
# first, up to this many seconds, then gets a French « réessayez » page
# (mutualisation.middleware.BusyDatabaseMiddleware) rather than an error.
DATABASE_LOCK_TIMEOUT = env.int("DJANGO_DB_LOCK_TIMEOUT", default=20)
_db_options = DATABASES["default"].setdefault("OPTIONS", {})
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE: a transaction takes the write lock when it begins, so it waits for (the busy
    # timeout) another writer instead of failing at once with « database is locked » when a
    # transaction that has read tries to write. WAL: reading never blocks writing nor the
    # reverse (a progress page polled during a batch); NORMAL is the safe pairing with WAL.
    _db_options.setdefault("transaction_mode", "IMMEDIATE")
    _db_options.setdefault("timeout", DATABASE_LOCK_TIMEOUT)
    _db_options.setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL")
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A row lock waited for longer than this gives up (lock_not_available) instead of holding
    # the request until gunicorn kills the worker.
    _db_options["options"] = " ".join(
        filter(None, [_db_options.get("options"), f"-c lock_timeout={DATABASE_LOCK_TIMEOUT}s"])
    )
# Behind PgBouncer in transaction mode (docs/deployment.md).
if env.bool("DJANGO_DB_PGBOUNCER", default=False):
    DATABASES["default"] = deployment.pgbouncer(DATABASES["default"])
# A read replica for the reports: the GET requests of these views read the project's data there.
_replica_url = env.str("DATABASE_REPLICA_URL", default="")
DATABASES = deployment.replica_databases(
    DATABASES["default"], env.db_url_config(_replica_url) if _replica_url else None
)
MUTUALIS_REPLICA_VIEWS = env.list(
    "MUTUALIS_REPLICA_VIEWS",
    default=["costing:dashboard", "costing:reimbursements", "costing:export"],
)
DATABASE_ROUTERS = ["mutualisation.routers.ReplicaRouter"] if _replica_url else []
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # First: refuses an authentication while the username (from that address) is locked out.
    "axes.backends.AxesStandaloneBackend",
    "rules.permissions.ObjectPermissionBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# French, Paris time, French number formats (1 234,56 with a narrow no-break space).
LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", "Français")]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True
USE_THOUSAND_SEPARATOR = True
LOCALE_PATHS = [BASE_DIR / "locale"]

# Static files: our own under static/, third-party assets straight from node_modules (installed by
# npm from the pinned package-lock.json), collected and served by whitenoise.
STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "staticfiles"))
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/bootstrap", BASE_DIR / "node_modules" / "bootstrap" / "dist"),
    ("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist"),
    ("vendor/chartjs", BASE_DIR / "node_modules" / "chart.js" / "dist"),
    ("vendor/tom-select", BASE_DIR / "node_modules" / "tom-select" / "dist"),
    (
        "vendor/fonts/source-sans-3",
        BASE_DIR / "node_modules" / "@fontsource" / "source-sans-3" / "files",
    ),
    (
        "vendor/fonts/source-serif-4",
        BASE_DIR / "node_modules" / "@fontsource" / "source-serif-4" / "files",
    ),
]
# Files on the local disk, or in an S3-compatible bucket (django-storages[s3], installed
# separately: docs/deployment.md) when MUTUALIS_S3_BUCKET is set.
STORAGES = deployment.storages_config(
    debug=DEBUG,
    bucket=env.str("MUTUALIS_S3_BUCKET", default=""),
    endpoint_url=env.str("MUTUALIS_S3_ENDPOINT_URL", default=""),
    region_name=env.str("MUTUALIS_S3_REGION", default=""),
    access_key=env.str("MUTUALIS_S3_ACCESS_KEY", default=""),
    secret_key=env.str("MUTUALIS_S3_SECRET_KEY", default=""),
    location=env.str("MUTUALIS_S3_PREFIX", default=""),
)
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("DJANGO_MEDIA_ROOT", default=str(VAR_DIR / "media"))

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"
DJANGO_TABLES2_TEMPLATE = "django_tables2/bootstrap5.html"

# Security. Everything is on unless DEBUG; a reverse proxy terminating TLS sets the header below.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Office PCs are shared: a session ends after MUTUALIS_SESSION_IDLE_MINUTES without a request
# (each request extends it) and when the browser closes.
SESSION_COOKIE_AGE = 60 * env.int("MUTUALIS_SESSION_IDLE_MINUTES", default=30)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
    if env.bool("DJANGO_BEHIND_TLS_PROXY", default=True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
    # WeasyPrint and fontTools narrate every rendering step at INFO.
    "loggers": {
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}

# Who hears about an accessibility defect (the déclaration d'accessibilité, /accessibilite/):
# the operator's address. [U] each deployment sets its own.
MUTUALIS_ACCESSIBILITY_CONTACT = env.str(
    "MUTUALIS_ACCESSIBILITY_CONTACT", default="accessibilite@mutualis.invalid"
)

# Demo accounts (seed_demo) are created only when this is true; it can never be true with DEBUG
# off, so a production database never receives the published demo password.
DEMO_USERS_ENABLED = DEBUG and env.bool("MUTUALIS_DEMO_USERS", default=True)

# Costing (CGCT D5211-16, L1612-2). [U] values from ../shared/domain.md stay configurable.
# Years of general renewal of the municipal councils, when the budget deadline moves to 30 April.
MUTUALIS_RENEWAL_YEARS = env.list("MUTUALIS_RENEWAL_YEARS", cast=int, default=[2020, 2026, 2032])
MUTUALIS_NOTIFICATION_DEADLINE = env.tuple(
    "MUTUALIS_NOTIFICATION_DEADLINE", cast=int, default=(4, 15)
)  # (month, day)
MUTUALIS_NOTIFICATION_DEADLINE_RENEWAL = env.tuple(
    "MUTUALIS_NOTIFICATION_DEADLINE_RENEWAL", cast=int, default=(4, 30)
)

# django-import-export: spreadsheet cells starting with =, +, - or @ are escaped on export
# (CSV/formula injection), and imports run in a transaction (all or nothing).
IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT = True
IMPORT_EXPORT_USE_TRANSACTIONS = True

# Celery: batches of statements. No broker configured → tasks run in-process.
CELERY_TASK_ALWAYS_EAGER = not env.str("CELERY_BROKER_URL", default="")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="memory://")
CELERY_TASK_EAGER_PROPAGATES = True
# The queue tasks go to, the tasks that tasks queue included (a batch queues its chunks).
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_MAX_TASKS_PER_CHILD = env.int("CELERY_WORKER_MAX_TASKS_PER_CHILD", default=10)
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env.int(
    "CELERY_WORKER_MAX_MEMORY_PER_CHILD", default=400_000
)  # KiB
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# A batch of statements pending or running blocks another batch of its year for at most this
# long (a batch whose worker died no longer does).
MUTUALIS_BATCH_STALE_MINUTES = env.int("MUTUALIS_BATCH_STALE_MINUTES", default=30)
# A batch renders its statements in chunks of this many (one Celery task each, shared by the
# workers); the year's summary PDF is rendered this many rows at a time, then joined.
MUTUALIS_BATCH_CHUNK_SIZE = env.int("MUTUALIS_BATCH_CHUNK_SIZE", default=10)
MUTUALIS_SUMMARY_PART_ROWS = env.int("MUTUALIS_SUMMARY_PART_ROWS", default=250)

# Commune review of draft statements, in days after they are prepared.
MUTUALIS_STATEMENT_REVIEW_DAYS = env.int("MUTUALIS_STATEMENT_REVIEW_DAYS", default=15)

# E-mail notifications (drafts ready for a commune, a remark for finance, finance's answer):
# EMAIL_URL as django-environ reads it (smtp://user:password@host:587, smtp+tls://…,
# consolemail://); in development the messages are printed. Links in the messages are built from
# MUTUALIS_SITE_URL, the address people open (no request is at hand when a message is sent).
# [U] each deployment sets both, and DJANGO_DEFAULT_FROM_EMAIL.
_email = env.email_url("EMAIL_URL", default="consolemail://" if DEBUG else "smtp://localhost:25")
globals().update({key: value for key, value in _email.items() if value is not None})
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="mutualis@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
MUTUALIS_SITE_URL = env.str("MUTUALIS_SITE_URL", default="http://localhost:8000")
# A mail server that does not answer must not hold a page (the notifications are sent after
# the commit, within the request): the send gives up after this many seconds and is logged.
EMAIL_TIMEOUT = env.int("MUTUALIS_EMAIL_TIMEOUT", default=10)

# Login throttling (django-axes), on the site's login page and the admin's: after
# AXES_FAILURE_LIMIT failed attempts for one username from one address, that pair is locked out
# for AXES_COOLOFF_TIME; a success resets the count. Attempts are kept in the database and
# visible in the admin.
AXES_FAILURE_LIMIT = env.int("MUTUALIS_LOGIN_FAILURE_LIMIT", default=5)
# The person's address, not the reverse proxy's (mutualisation/proxies.py): otherwise anyone
# knowing a username locks its owner out, every request coming from the proxy's address.
AXES_CLIENT_IP_CALLABLE = "mutualisation.proxies.client_ip"
AXES_COOLOFF_TIME = timedelta(minutes=env.int("MUTUALIS_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/lockout.html"
AXES_USERNAME_FORM_FIELD = "username"
AXES_VERBOSE = False

# Content-Security-Policy (django-csp): scripts, styles, fonts and images from the site only; no
# inline script or style attribute anywhere (confirmations and progress bars are static JS),
# no plugin, no framing, forms posted to the site only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# The reason kept with each change in the history (a correction's motif, typed by a person) is
# text of any length: a longer motif was a 500 on PostgreSQL (varchar(100)).
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True

# A cache shared by every gunicorn worker and server (Redis), when configured: the API's
# throttling counts a user's requests across them all. Without it, each process its own.
if _cache_url := env.str("MUTUALIS_CACHE_URL", default=""):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _cache_url,
            "KEY_PREFIX": "mutualis",
        }
    }

# The REST API (/api/v1/, mutualisation/api.py): a token per user (revocable in the admin) or
# the browser's session; the same scopes and rules as the screens; French errors in one format.
# Trusted reverse proxies in front of the application (docs/deployment.md): 1 behind the
# documented nginx (the production default), 0 when browsers reach it directly (DEBUG's default).
# The address counted by the login throttling and the API's rate limits is the hop the outermost
# proxy appended to X-Forwarded-For; what a client writes there itself is never believed.
MUTUALIS_PROXY_COUNT = env.int("MUTUALIS_PROXY_COUNT", default=0 if DEBUG else 1)

REST_FRAMEWORK = {
    "NUM_PROXIES": MUTUALIS_PROXY_COUNT,
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "mutualisation.rest.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "mutualisation.schema.AutoSchema",
    "EXCEPTION_HANDLER": "mutualisation.rest.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("MUTUALIS_API_ANON_RATE", default="60/hour"),
        "user": env.str("MUTUALIS_API_USER_RATE", default="3600/hour"),
    },
    "COERCE_DECIMAL_TO_STRING": True,  # money stays exact: "1234.50", never a float
    "DATETIME_FORMAT": "iso-8601",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "API Mutualis",
    "DESCRIPTION": (
        "Conventions de mutualisation, coûts unitaires, recours et remboursements "
        "(CGCT D5211-16). Authentification : « Authorization: Token <jeton> » (jeton par "
        "utilisateur, révocable dans l'administration). Montants en chaînes décimales exactes."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ConventionStatusEnum": "conventions.models.Status",
        "AmendmentStatusEnum": "conventions.models.Amendment.AmendmentStatus",
        "StatementStatusEnum": "costing.models.StatementStatus",
        "OrganisationKindEnum": "mutualisation.models.OrganisationKind",
        "ConventionKindEnum": "conventions.models.ConventionKind",
        "ServiceKindEnum": "mutualisation.models.ServiceKind",
    },
}

# Rows of one usage import (above it, the file is refused at once: split it).
MUTUALIS_IMPORT_MAX_ROWS = env.int("MUTUALIS_IMPORT_MAX_ROWS", default=50_000)
# Records of one batch sent to POST /api/v1/usage-records/bulk/ (checked and written within the
# request; never more than MUTUALIS_IMPORT_MAX_ROWS).
MUTUALIS_API_BULK_MAX_RECORDS = env.int("MUTUALIS_API_BULK_MAX_RECORDS", default=10_000)
# Usage files up to this many rows are checked within the request; larger ones as a Celery job.
MUTUALIS_IMPORT_SYNC_ROWS = env.int("MUTUALIS_IMPORT_SYNC_ROWS", default=2000)
# Usage files dropped but never imported are deleted after this many days (purge_usage_imports).
MUTUALIS_IMPORT_RETENTION_DAYS = env.int("MUTUALIS_IMPORT_RETENTION_DAYS", default=30)

# Download and export log retention (CNIL recommends 6 to 12 months).
MUTUALIS_AUDIT_RETENTION_DAYS = env.int("MUTUALIS_AUDIT_RETENTION_DAYS", default=365)
