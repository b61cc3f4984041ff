"""Settings, read from the environment, with embedded defaults for `make run`.

Without DATABASE_URL: a SQLite file. Without REDIS_URL: in-memory channel layer and eager Celery.
Nothing outside config/ reads the environment.
"""

import hashlib
import tempfile
import warnings
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from pythonjsonlogger.core import RESERVED_ATTRS

from .env import env_bool, env_list, env_number, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY in the environment, or DEBUG=1 for local use."
        )
    SECRET_KEY = "django-insecure-local-development-key-not-for-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Public base URL used in emails and outbound links.
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "django_htmx",
    "axes",
    "csp",
    "drf_spectacular_sidecar",
    "crm",
    "escalation",
    "tickets",
    "notifications",
    "integrations",
]

MIDDLEWARE = [
    # /healthz, /readyz and /metrics, before host validation and the HTTPS redirect (config/ops.py)
    "config.ops.OpsEndpointsMiddleware",
    "config.ops.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.cache_headers.NoStoreByDefaultMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lockout into the 429 page
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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

# --- Database -----------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL and not DATABASE_URL.startswith(("postgres://", "postgresql://")):
    raise ImproperlyConfigured(
        "DATABASE_URL must be a PostgreSQL URL, postgres://user:password@host:5432/name "
        "(unset it for the embedded SQLite file)."
    )
if DATABASE_URL:
    # Health checks let a request after a PostgreSQL restart reconnect instead of failing.
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_number("DB_CONN_MAX_AGE", 60, minimum=0),
            conn_health_checks=True,
        )
    }
else:
    _CHECKOUT = hashlib.sha1(str(BASE_DIR).encode()).hexdigest()[:10]  # one test file per checkout
    # Safe for concurrent writers (two agents taking over at once): every transaction takes the
    # write lock when it begins (IMMEDIATE), so a reader never has to upgrade to a writer and
    # fail with "database is locked"; others wait up to the busy timeout. WAL lets readers go
    # on while one writes. Tests use a file too (an in-memory database can't be shared safely
    # across threads), so the race tests run on SQLite as well as on PostgreSQL.
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            "TEST": {
                "NAME": str(
                    Path(tempfile.gettempdir()) / f"live-escalation-test-{_CHECKOUT}.sqlite3"
                )
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer and Celery -------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
if REDIS_URL and not REDIS_URL.startswith(REDIS_SCHEMES):
    raise ImproperlyConfigured(
        f"REDIS_URL must start with redis://, rediss:// or unix://, got {REDIS_URL!r}."
    )
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "capacity": 1000, "expiry": 30},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = False
# With eager Celery there is no `celery beat` process: the ASGI process runs the periodic tasks
# in a thread (config/scheduler.py). Off by default with a broker, where beat runs on its own.
EMBEDDED_BEAT = env_bool("EMBEDDED_BEAT", CELERY_TASK_ALWAYS_EAGER)
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-task leaves the message for another worker
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis redelivers a task not acknowledged within this window, including tasks waiting for a
# retry countdown: keep it above the longest retry wait (webhooks back off up to an hour).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 7200}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"

# --- Email ----------------------------------------------------------------------------------------
EMAIL_HOST = env_str("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_number("EMAIL_PORT", 25, minimum=1, maximum=65535)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
    EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
    EMAIL_TIMEOUT = env_number("EMAIL_TIMEOUT", 10, minimum=1)
else:
    EMAIL_BACKEND = "config.email.ConsoleSummaryBackend"  # one line per email
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Live Escalation <alerts@localhost>")

# --- Claude ---------------------------------------------------------------------------------------
ANTHROPIC_API_KEY = env_str("ANTHROPIC_API_KEY")
# A current model (the SDK lists claude-sonnet-4-5 as reaching end-of-life on 2026-11-30).
ANTHROPIC_MODEL = env_str("ANTHROPIC_MODEL", "claude-sonnet-5-5")
ANTHROPIC_TIMEOUT = env_number("ANTHROPIC_TIMEOUT", 10.0, cast=float, minimum=0.1)
ANTHROPIC_MAX_RETRIES = env_number("ANTHROPIC_MAX_RETRIES", 1, minimum=0, maximum=10)

# --- Product knobs --------------------------------------------------------------------------------
LIVE_ESCALATION = {
    # Longest text a customer or agent may send in one message.
    "MAX_MESSAGE_CHARS": env_number("MAX_MESSAGE_CHARS", 4000, minimum=1),
    # Messages per connection per 10 seconds before the socket answers with an error frame.
    "SOCKET_RATE_LIMIT": env_number("SOCKET_RATE_LIMIT", 20, minimum=1),
    # Wait assumed per escalation ahead in the queue when there is no pickup history.
    "DEFAULT_PICKUP_SECONDS": env_number("DEFAULT_PICKUP_SECONDS", 180, minimum=1),
    # Messages older than this without an analysis are re-queued by the sweep.
    "ANALYSIS_SWEEP_AFTER_SECONDS": env_number("ANALYSIS_SWEEP_AFTER_SECONDS", 60, minimum=1),
    "NOTIFICATION_RETENTION_DAYS": env_number("NOTIFICATION_RETENTION_DAYS", 30, minimum=1),
    # Conversations one IP may start from the widget per minute.
    "WIDGET_START_RATE_LIMIT": env_number("WIDGET_START_RATE_LIMIT", 10, minimum=1),
    # Pre-chat form checks (POST /widget/prechat/) one IP may make per minute.
    "WIDGET_PRECHAT_RATE_LIMIT": env_number("WIDGET_PRECHAT_RATE_LIMIT", 30, minimum=1),
    # Fair use of the customer sockets, counted across processes (crm/limits.py): open sockets
    # per conversation and per client address, and customer messages per minute per
    # conversation and per address.
    "SOCKETS_PER_CONVERSATION": env_number("SOCKETS_PER_CONVERSATION", 5, minimum=1),
    "SOCKETS_PER_ADDRESS": env_number("SOCKETS_PER_ADDRESS", 50, minimum=1),
    "MESSAGES_PER_CONVERSATION_PER_MINUTE": env_number(
        "MESSAGES_PER_CONVERSATION_PER_MINUTE", 30, minimum=1
    ),
    "MESSAGES_PER_ADDRESS_PER_MINUTE": env_number(
        "MESSAGES_PER_ADDRESS_PER_MINUTE", 120, minimum=1
    ),
    # Customer frames waiting for the database per conversation and process, over all its
    # sockets (then refused with a "busy" frame): one conversation's backlog stays small.
    "FRAME_QUEUE_MAX": env_number("FRAME_QUEUE_MAX", 10, minimum=1, maximum=1000),
    # Threads per ASGI process that store customer messages, each with its own database
    # connection (crm/consumers.py): stores of different conversations run side by side while
    # one waits for PostgreSQL. SQLite has one writer at a time, so one thread there.
    "STORE_THREADS": env_number("STORE_THREADS", 4 if DATABASE_URL else 1, minimum=1, maximum=32),
    # How often an open agent socket re-checks that its user and session are still valid (a
    # revocation also closes it at once through its agent.<id> group).
    "SOCKET_RECHECK_SECONDS": env_number("SOCKET_RECHECK_SECONDS", 30.0, cast=float, minimum=1),
    # Deepest JSON nesting accepted anywhere (API, widget, webhooks, sockets).
    "MAX_JSON_DEPTH": env_number("MAX_JSON_DEPTH", 32, minimum=2, maximum=200),
    # WhatsApp/Instagram customers waiting in the queue get a message when their estimate moved
    # by at least this many minutes (or they are next), at most once per interval.
    "WAIT_UPDATE_MIN_CHANGE_MINUTES": env_number("WAIT_UPDATE_MIN_CHANGE_MINUTES", 3, minimum=1),
    "WAIT_UPDATE_MIN_INTERVAL_SECONDS": env_number(
        "WAIT_UPDATE_MIN_INTERVAL_SECONDS", 300, minimum=30
    ),
}

# --- Cache: rate limits and throttles. Per process unless CACHE_URL points at a shared Redis
# (use a Redis database of its own: clearing the cache flushes that database).
CACHE_URL = env_str("CACHE_URL")
if CACHE_URL and not CACHE_URL.startswith(REDIS_SCHEMES):
    raise ImproperlyConfigured(
        f"CACHE_URL must start with redis://, rediss:// or unix://, got {CACHE_URL!r}."
    )
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Request bodies: bounded in front of Django (config/body_limit.py) ---------------------------
# A body over the limit is refused (413) before it is read, and one that has not fully arrived
# within the timeout is dropped (408). Django keeps every accepted body in memory (never a
# temporary file) because its spooling threshold is the same limit.
MAX_REQUEST_BODY_BYTES = env_number("MAX_REQUEST_BODY_BYTES", 1024 * 1024, minimum=1024)
REQUEST_BODY_TIMEOUT_SECONDS = env_number(
    "REQUEST_BODY_TIMEOUT_SECONDS", 15.0, cast=float, minimum=0.1
)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES

# --- Auth, i18n, static ---------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: a locked-out login is refused unchecked
    "django.contrib.auth.backends.ModelBackend",
]
# Login lockout (django-axes): after LOGIN_FAILURE_LIMIT wrong passwords for one username from
# one address, that pair is refused (429) for LOGIN_LOCKOUT_MINUTES. Attempts are rows in the
# database, so every process sees them; a successful login resets the count.
AXES_FAILURE_LIMIT = env_number("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env_number("LOGIN_LOCKOUT_MINUTES", 15, minimum=1) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "crm.limits.request_client_address"
AXES_VERBOSE = False
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/crm/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
# With the finders, files are served from the app folders until `collectstatic` fills STATIC_ROOT:
# whitenoise's "No directory at: .../staticfiles/" at every process start is noise then.
warnings.filterwarnings("ignore", message=r"No directory at: .*staticfiles", category=UserWarning)
# Under ASGI Django reads whitenoise's file iterator in a thread and warns at every static file;
# ours are small (the largest, widget.js, 43 KB).
warnings.filterwarnings(
    "ignore", message="StreamingHttpResponse must consume synchronous iterators"
)

# --- DRF ------------------------------------------------------------------------------------------
# Behind one reverse proxy, its X-Forwarded-For/-Proto are trusted; otherwise they are ignored
# (a client could forge them to dodge throttles).
BEHIND_PROXY = env_bool("BEHIND_PROXY", False)

REST_FRAMEWORK = {
    "NUM_PROXIES": 1 if BEHIND_PROXY else 0,
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "integrations.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["integrations.permissions.HasScope"],
    "DEFAULT_PARSER_CLASSES": [
        "integrations.parsers.BoundedJSONParser",  # nesting depth checked before parsing
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "integrations.schema.ApiAutoSchema",
    "EXCEPTION_HANDLER": "integrations.exceptions.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["integrations.throttles.ApiCallerThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "api": env_str("API_THROTTLE_RATE", "1200/min"),
        "conversation_start": env_str("API_CONVERSATION_START_RATE", "120/min"),
        "customer_message": env_str("API_CUSTOMER_MESSAGE_RATE", "30/min"),
        "webhook": env_str("API_WEBHOOK_RATE", "1200/min"),
        # Wrong API tokens per address; past it every token from there is 429 for a while.
        "token_failure": env_str("API_TOKEN_FAILURE_RATE", "20/min"),
    },
    "DEFAULT_PAGINATION_CLASS": "integrations.pagination.ApiPagination",
    "PAGE_SIZE": 50,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Live Escalation API",
    "DESCRIPTION": (
        "Drive and watch escalations from AI to human agents. Authenticate with "
        "`Authorization: Token <token>` (scopes read, write, manage); customers reach their "
        "own conversation with `X-Customer-Token`. Every error is "
        '`{"error": {"code", "message", "fields"?}}`.'
    ),
    "VERSION": "1.0.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/(v1/)?",
    "PATH_CONVERTER_OVERRIDES": {
        "api_id": {"type": "integer", "minimum": 0, "maximum": 999999999999999999}
    },
    "ENUM_NAME_OVERRIDES": {
        "EscalationStatusEnum": "escalation.models.Escalation.Status",
        "TicketStatusEnum": "tickets.models.Ticket.Status",
        "DeliveryStatusEnum": "crm.models.Message.Delivery",
        "WebhookDeliveryStatusEnum": "integrations.models.WebhookDelivery.Status",
        "AvailabilityEnum": "crm.models.AgentProfile.Availability",
        "ChannelKindEnum": "crm.models.ChannelKind",
        "WebhookEventEnum": "integrations.models.WebhookEvent",
        "EscalationEventKindEnum": "escalation.models.EscalationEvent.Kind",
        "TicketEventKindEnum": "tickets.models.TicketEvent.Kind",
        "TeamRoutingModeEnum": "escalation.routing.models.TeamRouting.Mode",
        "ConversationModeEnum": "crm.models.Conversation.Mode",
    },
}

# --- Security: on by default whenever DEBUG is off -----------------------------------------------
HTTPS_ONLY = env_bool("HTTPS_ONLY", not DEBUG)
SECURE_SSL_REDIRECT = HTTPS_ONLY
SESSION_COOKIE_SECURE = HTTPS_ONLY
CSRF_COOKIE_SECURE = HTTPS_ONLY
SECURE_HSTS_SECONDS = env_number("SECURE_HSTS_SECONDS", 31536000 if HTTPS_ONLY else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS_ONLY
SECURE_HSTS_PRELOAD = HTTPS_ONLY
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_PROXY else None
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Scripts and styles only from our own static files: no inline script, no eval, no <style>
# element or style attribute (charts are SVG attributes, widget.js styles its shadow root with a
# constructed stylesheet, htmx's indicator rules are in crm.css). Nothing may frame a page, and
# forms post only to us.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- Operations: metrics and logs (config/ops.py, docs/operations.md) ----------------------------
# Several processes (uvicorn workers, the Celery pool) write their metrics to files in this folder
# and /metrics adds them up; empty it before the processes start (`make serve` does).
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR")
# /metrics asks for `Authorization: Bearer <METRICS_TOKEN>`; without a token only loopback
# clients that did not come through a proxy get it.
METRICS_TOKEN = env_str("METRICS_TOKEN")
if METRICS_TOKEN and len(METRICS_TOKEN) < 16:
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 16 characters.")
# json: one JSON object per line with request_id and conversation_id; text: for a terminal.
LOG_FORMAT = env_str("LOG_FORMAT", "text" if DEBUG else "json")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, got {LOG_FORMAT!r}.")
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").strip().upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(
        f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {env_str('LOG_LEVEL')!r}."
    )

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "crm.logcontext.ContextFilter"},
        "redact_tokens": {"()": "crm.logcontext.RedactTokensFilter"},
    },
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s "
            "%(conversation_id)s %(process)d",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            # uvicorn's copy of each message with terminal colours in it
            "reserved_attrs": [*RESERVED_ATTRS, "color_message"],
        },
        "text": {
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s c=%(conversation_id)s] "
            "%(message)s"
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["context"],
            "formatter": LOG_FORMAT,
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        # The embedded beat fires every few seconds in the server's own console (make run): a
        # line per task run would bury the URL and logins. Failures still show (WARNING+).
        **(
            {name: {"level": "WARNING"} for name in ("celery.app.trace", "celery.beat")}
            if EMBEDDED_BEAT
            else {}
        ),
        # The in-memory broker has no host; kombu warns so on its first connection.
        **({"kombu.connection": {"level": "ERROR"}} if CELERY_BROKER_URL == "memory://" else {}),
        # uvicorn logs every accepted socket's URL, the customer's token in it (both formats).
        "uvicorn.error": {"filters": ["redact_tokens"]},
        # uvicorn's own lines (start and stop, every socket's "[accepted]" and "connection
        # open") join the JSON stream once a process has loaded Django; its levels stay its own.
        **(
            {
                name: {"handlers": ["console"], "propagate": False}
                for name in ("uvicorn", "uvicorn.access")
            }
            if LOG_FORMAT == "json"
            else {}
        ),
    },
}
