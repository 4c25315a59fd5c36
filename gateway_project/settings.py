"""Settings, all from the environment (django-environ). Every custom setting is typed
and commented here and documented in README.md and .env.example.

The embedded default (no environment at all) is a single process on SQLite with
in-process shared state and a Celery broker that needs no server.
"""

from __future__ import annotations

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("GATEWAY_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()
# A local .env is a convenience for development; real deployments set the environment.
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG: bool = env.bool("DEBUG", default=False)
# The embedded default must start on a fresh machine, so a development-only key is
# used when none is set -- but never silently in production (DEBUG off + Postgres).
SECRET_KEY: str = env.str("SECRET_KEY", default="")
ALLOWED_HOSTS: list[str] = env.list(
    "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",  # must precede staticfiles: its runserver serves HTTP + websockets
    # Django's admin app with the product's admin site (gateway_admin.site) as admin.site.
    "gateway_admin.site.GatewayAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_prometheus",
    "django_celery_beat",
    "providers",
    "billing",
    "guardrails",
    "routing",
    "streaming",
    "gateway_admin",
]

# django_prometheus's request middlewares are deliberately absent: they are
# synchronous (MiddlewareMixin) and would push every /v1 request through a thread
# hop. The gateway records its own per-route/model/provider series (routing.metrics).
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "gateway_project.urls"
ASGI_APPLICATION = "gateway_project.asgi.application"
WSGI_APPLICATION = None

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

# --- database -----------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'gateway.sqlite3'}")
}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + IMMEDIATE transactions: concurrent writers (gateway + Celery worker) wait
    # for the lock instead of failing with "database is locked".
    _db.setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    _db["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    # pytest-django: a file-backed test DB, so a gateway served from another thread
    # or process in the tests sees the same data.
    _db.setdefault("TEST", {})["NAME"] = str(VAR_DIR / f"test-gateway-{os.getpid()}.sqlite3")
elif _db["ENGINE"] == "django.db.backends.postgresql":
    # Under ASGI every request runs its ORM calls on a short-lived thread, so
    # persistent per-thread connections do not help; a psycopg pool does.
    if env.bool("DATABASE_POOL", default=True):
        _db.setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": env.int("DATABASE_POOL_MAX", default=20),
            "timeout": 10,
        }
        _db["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- shared state ---------------------------------------------------------------
# REDIS_URL (optional): shared counters, caches and the channel layer for several
# gateway processes. Without it everything is in-process (single-process default).
REDIS_URL: str = env.str("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- celery ---------------------------------------------------------------------
# Without Redis the filesystem broker lets a separate worker process (with embedded
# beat) run with no server at all.
CELERY_BROKER_URL: str = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = (
    {}
    if not CELERY_BROKER_URL.startswith("filesystem")
    else {
        "data_folder_in": str(VAR_DIR / "celery" / "queue"),
        "data_folder_out": str(VAR_DIR / "celery" / "queue"),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
)
if CELERY_BROKER_URL.startswith("filesystem"):
    for _folder in ("queue", "processed", "control"):
        (VAR_DIR / "celery" / _folder).mkdir(parents=True, exist_ok=True)
CELERY_TASK_ALWAYS_EAGER: bool = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
# The default periodic tasks live in gateway_project/schedule.py and are created in
# the database once (after migrate), so editors' changes in the admin persist.

# --- gateway --------------------------------------------------------------------
# Seconds an in-process copy of keys/routes/models may be served before it is
# re-read; an admin edit reaches every process within about this long.
GATEWAY_CONFIG_TTL_S: float = env.float("GATEWAY_CONFIG_TTL_S", default=2.0)
# Output guardrails on streams hold back at most this many characters per choice
# (only while the tail could still become a finding: a private key block streamed
# whole needs ~3.3K for RSA-4096); beyond it the tail is checked
# as it stands and sent.
GATEWAY_GUARDRAIL_MAX_HOLD: int = env.int("GATEWAY_GUARDRAIL_MAX_HOLD", default=4096)
# The answer cache (routing.cache; docs/caching.md). Values in Redis when a URL is set
# (GATEWAY_CACHE_REDIS_URL, default REDIS_URL), else an in-process LRU of this many bytes.
GATEWAY_CACHE_REDIS_URL: str = env.str("GATEWAY_CACHE_REDIS_URL", default=REDIS_URL)
GATEWAY_CACHE_LOCAL_MAX_BYTES: int = env.int("GATEWAY_CACHE_LOCAL_MAX_BYTES", default=64 * 1024 * 1024)
# Requests larger than this (normalised) are not cached; answers larger than this are not stored.
GATEWAY_CACHE_MAX_PROMPT_BYTES: int = env.int("GATEWAY_CACHE_MAX_PROMPT_BYTES", default=64 * 1024)
GATEWAY_CACHE_MAX_ANSWER_BYTES: int = env.int("GATEWAY_CACHE_MAX_ANSWER_BYTES", default=256 * 1024)
# How long a request waits for an identical one in flight before calling the provider itself.
GATEWAY_CACHE_COALESCE_WAIT_S: float = env.float("GATEWAY_CACHE_COALESCE_WAIT_S", default=120.0)
# Semantic cache (routing.cache.semantic): PostgreSQL with pgvector for the vectors when set,
# else in process, bounded to this many entries (least recently used dropped first).
GATEWAY_CACHE_VECTOR_URL: str = env.str("GATEWAY_CACHE_VECTOR_URL", default="")
GATEWAY_CACHE_SEMANTIC_MAX_ENTRIES: int = env.int("GATEWAY_CACHE_SEMANTIC_MAX_ENTRIES", default=200_000)
# How the embedding model runs: int8 (onnxruntime, the default), fp32 (onnxruntime) or numpy.
GATEWAY_CACHE_EMBEDDER: str = env.str("GATEWAY_CACHE_EMBEDDER", default="int8")
# Largest websocket message the playground accepts (bytes): a long conversation fits.
GATEWAY_PLAYGROUND_MAX_MESSAGE_BYTES: int = env.int("GATEWAY_PLAYGROUND_MAX_MESSAGE_BYTES", default=512 * 1024)
# Where a signed-in user sees their own spend and limits (the playground links to it).
GATEWAY_MY_USAGE_URL: str = env.str("GATEWAY_MY_USAGE_URL", default="/reports/me/")
# Largest request body accepted on /v1 (bytes).
GATEWAY_MAX_BODY_BYTES: int = env.int("GATEWAY_MAX_BODY_BYTES", default=8 * 1024 * 1024)
# A /v1 client that declares a body and does not send it (slowloris) is answered 408
# and dropped after this many seconds.
GATEWAY_REQUEST_READ_TIMEOUT_S: float = env.float("GATEWAY_REQUEST_READ_TIMEOUT_S", default=30.0)
# Connection pool of the one shared upstream HTTP client per process.
GATEWAY_HTTP_MAX_CONNECTIONS: int = env.int("GATEWAY_HTTP_MAX_CONNECTIONS", default=512)
GATEWAY_HTTP_KEEPALIVE: int = env.int("GATEWAY_HTTP_KEEPALIVE", default=128)
# Circuit breaker defaults (each route may override them in the admin): a target
# opens after this many consecutive failures, or when this share of its requests in
# the window failed (with at least the minimum number of requests); after the
# cooldown one trial request decides whether it closes again.
GATEWAY_BREAKER_FAILURES: int = env.int("GATEWAY_BREAKER_FAILURES", default=5)
GATEWAY_BREAKER_FAILURE_RATE: float = env.float("GATEWAY_BREAKER_FAILURE_RATE", default=0.5)
GATEWAY_BREAKER_WINDOW_S: float = env.float("GATEWAY_BREAKER_WINDOW_S", default=60.0)
GATEWAY_BREAKER_MIN_REQUESTS: int = env.int("GATEWAY_BREAKER_MIN_REQUESTS", default=10)
GATEWAY_BREAKER_COOLDOWN_S: float = env.float("GATEWAY_BREAKER_COOLDOWN_S", default=30.0)
# Active health checks: seconds between probes of each enabled model (Celery beat),
# and how many days of probe history to keep.
GATEWAY_HEALTH_INTERVAL_S: int = env.int("GATEWAY_HEALTH_INTERVAL_S", default=60)
GATEWAY_HEALTH_RETENTION_DAYS: int = env.int("GATEWAY_HEALTH_RETENTION_DAYS", default=7)
# Completion tokens a budget reservation assumes when a request sets no max_tokens
# (bounded by the model's context window). Higher = safer budgets, fewer admitted
# requests near the limit.
GATEWAY_RESERVE_COMPLETION_TOKENS: int = env.int("GATEWAY_RESERVE_COMPLETION_TOKENS", default=4096)
# A budget reservation is a lease: it expires by itself this many seconds after the
# route's deadline (timeout_s) unless renewed, so a gateway process killed mid-request
# cannot keep a budget blocked. The margin covers settling after the deadline; a
# stream renews its lease every half lease while it runs (billing.money.lease_seconds).
GATEWAY_LEASE_MARGIN_S: float = env.float("GATEWAY_LEASE_MARGIN_S", default=30.0)
if not 0 <= GATEWAY_LEASE_MARGIN_S <= 86400:
    raise environ.ImproperlyConfigured("GATEWAY_LEASE_MARGIN_S must be between 0 and 86400 seconds")
# Write a non-streamed answer's usage record right after its last byte instead of
# just before it. Durability is the same (either way a crash before the commit loses
# the row); what changes is ordering: a client may see the answer ~1 ms before the
# row exists. Saves that write from the answer's latency (BENCHMARKS.md).
GATEWAY_LEDGER_AFTER_RESPONSE: bool = env.bool("GATEWAY_LEDGER_AFTER_RESPONSE", default=False)
# Where a usage row goes when the database is down (an fsynced append-only file, one per
# host); `manage.py replay_usage_dead_letters` and the replay beat task write it back.
GATEWAY_LEDGER_DEAD_LETTER_PATH: str = env.str(
    "GATEWAY_LEDGER_DEAD_LETTER_PATH", default=str(VAR_DIR / "ledger-dead-letters.jsonl")
)
# --- metrics (issue 15; gateway_project/metrics_view.py, docs/operations/metrics.md) ---
# Who may scrape /metrics: client addresses (CIDRs, comma-separated; empty = any) and,
# when set, a bearer token (Authorization: Bearer <token>). Outside the list: 403; a
# missing or wrong token: 401. Default: loopback only, no token. Several workers share
# one scrape with PROMETHEUS_MULTIPROC_DIR (an environment variable, read by prometheus_client).
GATEWAY_METRICS_ALLOW: list[str] = env.list("GATEWAY_METRICS_ALLOW", default=["127.0.0.1/32", "::1/128"])
GATEWAY_METRICS_TOKEN: str = env.str("GATEWAY_METRICS_TOKEN", default="")
# --- end metrics ---
# Days of usage records to keep (0 = forever); pruned daily by a Celery beat task.
GATEWAY_USAGE_RETENTION_DAYS: int = env.int("GATEWAY_USAGE_RETENTION_DAYS", default=0)
# --- usage retention (issue 15; docs/operations/retention.md) ---
# Whole UTC days older than that are rolled up, then deleted this many rows per short
# transaction; never the current month, nor rows an enabled "total" budget sums.
# 0 (forever) stays the default: the per-request trail is gone for good once pruned
# (finance keeps its totals in the rollups) and an upgrade must not start deleting.
if GATEWAY_USAGE_RETENTION_DAYS < 0:
    raise environ.ImproperlyConfigured("GATEWAY_USAGE_RETENTION_DAYS must be 0 (keep forever) or more")
GATEWAY_USAGE_RETENTION_BATCH: int = env.int("GATEWAY_USAGE_RETENTION_BATCH", default=1000)
if not 1 <= GATEWAY_USAGE_RETENTION_BATCH <= 100_000:
    raise environ.ImproperlyConfigured("GATEWAY_USAGE_RETENTION_BATCH must be between 1 and 100000 rows")
# --- end usage retention ---
# --- health (issue 15; docs/operations/health.md) ---
# /readyz: each check gets this many seconds (they run concurrently); the ledger check
# fails when more usage rows than this wait in the dead letters (table + this host's file).
GATEWAY_READY_CHECK_TIMEOUT_S: float = env.float("GATEWAY_READY_CHECK_TIMEOUT_S", default=1.0)
GATEWAY_READY_MAX_DEAD_LETTERS: int = env.int("GATEWAY_READY_MAX_DEAD_LETTERS", default=1000)
# Seconds between Celery worker heartbeats (a beat task); the admin calls the worker
# stale after 3 missed beats. With GATEWAY_READY_HEARTBEAT /readyz fails too then.
GATEWAY_HEARTBEAT_INTERVAL_S: int = env.int("GATEWAY_HEARTBEAT_INTERVAL_S", default=30)
GATEWAY_READY_HEARTBEAT: bool = env.bool("GATEWAY_READY_HEARTBEAT", default=False)
# Readiness checks beyond the database and Redis (dotted paths; gateway_project.health runs
# them without importing the apps): the ledger, and the worker heartbeat when asked for.
GATEWAY_READY_CHECKS: list[str] = ["billing.ledger_health.readiness"] + (
    ["routing.heartbeat.readiness"] if GATEWAY_READY_HEARTBEAT else []
)
# --- end health ---
# --- tracing (issue 15; routing.tracing, docs/operations/tracing.md) ---
# OpenTelemetry traces over OTLP/HTTP (protobuf) to this collector base URL (e.g.
# http://otel-collector:4318; spans go to <url>/v1/traces). Empty: tracing is off and the
# SDK is never loaded. The SDK's own OTEL_* variables (OTEL_SERVICE_NAME,
# OTEL_EXPORTER_OTLP_HEADERS, OTEL_TRACES_SAMPLER, OTEL_BSP_*) apply as documented there.
OTEL_EXPORTER_OTLP_ENDPOINT: str = env.str("OTEL_EXPORTER_OTLP_ENDPOINT", default="")
# --- end tracing ---
DATA_UPLOAD_MAX_MEMORY_SIZE = GATEWAY_MAX_BODY_BYTES

if not SECRET_KEY:
    if _db["ENGINE"] != "django.db.backends.sqlite3" and not DEBUG:
        raise environ.ImproperlyConfigured("SECRET_KEY must be set outside the embedded SQLite default")
    SECRET_KEY = "embedded-default-insecure-key-set-SECRET_KEY-in-production"

# django-cryptography derives its encryption key from SECRET_KEY unless this is set;
# set CRYPTOGRAPHY_KEY to rotate SECRET_KEY without losing stored provider keys.
CRYPTOGRAPHY_KEY: str | None = env.str("CRYPTOGRAPHY_KEY", default=None)
if CRYPTOGRAPHY_KEY is None:
    del CRYPTOGRAPHY_KEY

# --- email (budget alerts) -------------------------------------------------------
# EMAIL_URL: smtp://user:password@host:587 (django-environ); default prints to the log.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL: str = env.str("DEFAULT_FROM_EMAIL", default="llm-gateway@localhost")

# --- misc -----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
LOGIN_URL = "admin:login"

REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
SPECTACULAR_SETTINGS = {
    "TITLE": "LLM gateway API",
    "DESCRIPTION": "The OpenAI-compatible API (/v1, Bearer virtual key) and the management API (/api, staff token).",
    "VERSION": "0.1.0",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAdminUser"],
    # The site's URLs plus the /v1 endpoints, which routing.api serves outside Django.
    "SERVE_URLCONF": "gateway_project.openapi_urls",
    # The /v1 bodies' one-value discriminators ("role": "user", "type": "text"): one
    # named enum each instead of colliding generated names.
    "ENUM_NAME_OVERRIDES": {
        "".join(w.title() for w in v.replace(".", "_").split("_")) + "Literal": [v]
        for v in ("system", "developer", "user", "assistant", "tool", "function", "text", "refusal", "image_url",
                  "input_audio", "file", "chat.completion", "chat.completion.chunk", "model", "list")
    },
    # Swagger UI and Redoc assets are served from the sidecar package: no CDN needed.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOG_LEVEL: str = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Every provider key the process holds is scrubbed by value from every record that
    # reaches a handler, whichever logger wrote it (providers/secrets.py).
    "filters": {"scrub_secrets": {"()": "providers.secrets.ScrubSecrets"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["scrub_secrets"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # httpx logs every request URL at INFO; upstream URLs are config, not secrets,
    # but the noise costs CPU on the hot path.
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
# --- structured logs (issue 15; gateway_project/logs.py, docs/operations/logs.md) ---
# LOG_FORMAT=json: every line one JSON object (time, level, logger, message, request_id,
# trace_id...), the server's and the worker's own lines included. plain (the default,
# `make run`): the format above, with request_id= added on a request's lines.
LOG_FORMAT: str = env.str("LOG_FORMAT", default="plain").strip().lower()
if LOG_FORMAT not in ("plain", "json"):
    raise environ.ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
# One access line per /v1 request (logger gateway.access; never prompt, answer or keys).
GATEWAY_ACCESS_LOG: bool = env.bool("GATEWAY_ACCESS_LOG", default=True)
LOGGING["formatters"] = {
    "plain": {"()": "gateway_project.logs.PlainFormatter", "format": LOGGING["formatters"]["plain"]["format"]},
    "json": {"()": "gateway_project.logs.JsonFormatter"},
}
LOGGING["filters"]["request_context"] = {"()": "gateway_project.logs.RequestContextFilter"}
LOGGING["handlers"]["console"].update(formatter=LOG_FORMAT, filters=["request_context", "scrub_secrets"])
LOGGING_CONFIG = "gateway_project.logs.configure"  # dictConfig, then the server's own handlers adopted
# --- end structured logs ---
