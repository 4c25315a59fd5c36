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
    "streaming.csp.CSPMiddleware",  # Content-Security-Policy (django-csp; issue 16)
    "gateway_admin.middleware_audit.AuditContextMiddleware",  # the audit trail's "who" and "from where" (issue 16)
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
# --- keys and failed authentication (issue 16; billing/keys_pepper.py, billing/auth_throttle.py,
# docs/security/keys.md) ---
# The pepper virtual keys are hashed with (HMAC-SHA256): a random value of 32+ characters,
# kept apart from the database. Unset: derived from SECRET_KEY (`check --deploy` warns).
# Earlier peppers (comma-separated) stay accepted; their keys move to the current one on use.
GATEWAY_KEY_PEPPER: str = env.str("GATEWAY_KEY_PEPPER", default="")
GATEWAY_KEY_PEPPER_PREVIOUS: list[str] = env.list("GATEWAY_KEY_PEPPER_PREVIOUS", default=[])
# A key found under a legacy or earlier-pepper hash is moved to the current pepper on use.
# false during a rolling upgrade from the release before the pepper (its processes cannot
# verify moved keys); then `manage.py rehash_keys` once every process runs this release.
GATEWAY_KEY_UPGRADE_ON_USE: bool = env.bool("GATEWAY_KEY_UPGRADE_ON_USE", default=True)
# Failed authentication on /v1, per client address (IPv6: its /64) and per key prefix: after
# this many failures in the window, each further failure is answered 429
# (too_many_failed_attempts) no sooner than the interval after the previous one (one answer
# waits at most MAX_WAIT_S: below uvicorn's 25 s graceful shutdown). A valid key is never
# slowed. Shared through REDIS_URL when set.
GATEWAY_AUTH_THROTTLE: bool = env.bool("GATEWAY_AUTH_THROTTLE", default=True)
GATEWAY_AUTH_THROTTLE_FAILURES: int = env.int("GATEWAY_AUTH_THROTTLE_FAILURES", default=20)
GATEWAY_AUTH_THROTTLE_WINDOW_S: float = env.float("GATEWAY_AUTH_THROTTLE_WINDOW_S", default=60.0)
GATEWAY_AUTH_THROTTLE_INTERVAL_S: float = env.float("GATEWAY_AUTH_THROTTLE_INTERVAL_S", default=0.5)
GATEWAY_AUTH_THROTTLE_MAX_WAIT_S: float = env.float("GATEWAY_AUTH_THROTTLE_MAX_WAIT_S", default=20.0)
if not (0 <= GATEWAY_AUTH_THROTTLE_FAILURES <= 1_000_000 and 1 <= GATEWAY_AUTH_THROTTLE_WINDOW_S <= 86400
        and 0 <= GATEWAY_AUTH_THROTTLE_INTERVAL_S <= 60 and 0 <= GATEWAY_AUTH_THROTTLE_MAX_WAIT_S <= 600):
    raise environ.ImproperlyConfigured(
        "GATEWAY_AUTH_THROTTLE_*: FAILURES 0-1000000, WINDOW_S 1-86400, INTERVAL_S 0-60, MAX_WAIT_S 0-600"
    )
# --- end keys and failed authentication ---
# --- audit trail (issue 16; gateway_admin/audit.py, docs/security/audit.md) ---
# Days of audit entries kept (0 = forever; default 400, over a year). Older entries are
# deleted daily by the prune-audit-trail beat task or `manage.py prune_audit`; the chain
# keeps verifying (its anchor moves to the last entry deleted).
GATEWAY_AUDIT_RETENTION_DAYS: int = env.int("GATEWAY_AUDIT_RETENTION_DAYS", default=400)
if GATEWAY_AUDIT_RETENTION_DAYS < 0:
    raise environ.ImproperlyConfigured("GATEWAY_AUDIT_RETENTION_DAYS must be 0 (keep forever) or more days")
# --- end audit trail ---
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

# --- provider secrets (issue 16; providers/secret_keys.py, providers/secret_refs.py,
# providers/secret_backends.py, docs/security/secrets.md) ---
# With CRYPTOGRAPHY_KEY set, stored secrets are written with it alone (SECRET_KEY can then
# be rotated freely); the values it replaced stay readable with the previous keys listed
# here (comma-separated) until `manage.py reencrypt_secrets` has rewritten them.
CRYPTOGRAPHY_KEY_PREVIOUS: list[str] = env.list("CRYPTOGRAPHY_KEY_PREVIOUS", default=[])
# During a rolling upgrade from a release before this setting: write stored secrets in
# django-cryptography's own format (HMAC keyed with SECRET_KEY), which older releases read.
GATEWAY_SECRETS_LEGACY_FORMAT: bool = env.bool("GATEWAY_SECRETS_LEGACY_FORMAT", default=False)
# Secret stores for `<scheme>:<reference>` keys: scheme=dotted.path.Class, comma-separated,
# e.g. vault=providers.secret_backends.VaultKV2Backend (VAULT_ADDR, VAULT_TOKEN or VAULT_TOKEN_FILE).
GATEWAY_SECRET_BACKENDS: dict = env.dict("GATEWAY_SECRET_BACKENDS", default={})
# How long a value read from a secret store is reused before it is read again (seconds).
GATEWAY_SECRET_TTL_S: float = env.float("GATEWAY_SECRET_TTL_S", default=300.0)
# Django's own: earlier SECRET_KEYs still accepted (sessions, signing, and stored secrets
# written before CRYPTOGRAPHY_KEY was set) while SECRET_KEY is rotated (comma-separated).
SECRET_KEY_FALLBACKS: list[str] = env.list("SECRET_KEY_FALLBACKS", default=[])
# --- end provider secrets ---

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
# --- transport and browser (issue 16; routing/cors.py, streaming/origin.py, docs/security/transport.md) ---
# CORS for /v1 (browser clients): off while no origin is listed (no CORS header; a
# preflight is refused). Origins: exact (https://app.example.com[:port]), a wildcard
# first label (https://*.example.com) or *. Headers: names, a trailing * is a prefix.
GATEWAY_CORS_ALLOWED_ORIGINS: list[str] = env.list("GATEWAY_CORS_ALLOWED_ORIGINS", default=[])
GATEWAY_CORS_ALLOWED_HEADERS: list[str] = env.list("GATEWAY_CORS_ALLOWED_HEADERS", default=[
    "authorization", "content-type", "x-api-key", "anthropic-version", "anthropic-beta",
    "anthropic-dangerous-direct-browser-access", "openai-organization", "openai-project", "x-stainless-*",
    "x-gateway-cache", "x-gateway-task", "x-request-id", "traceparent", "tracestate",
])
GATEWAY_CORS_EXPOSE_HEADERS: list[str] = env.list(
    "GATEWAY_CORS_EXPOSE_HEADERS", default=["x-request-id", "x-gateway-*", "retry-after", "x-ratelimit-*"]
)
GATEWAY_CORS_MAX_AGE: int = env.int("GATEWAY_CORS_MAX_AGE", default=600)  # seconds a preflight is cached
# /v1 authenticates with headers, never cookies: credentials stay off (never with *).
GATEWAY_CORS_ALLOW_CREDENTIALS: bool = env.bool("GATEWAY_CORS_ALLOW_CREDENTIALS", default=False)
# Websockets (the playground) accept the page's own origin (Origin = the Host asked for,
# which ALLOWED_HOSTS admits), CSRF_TRUSTED_ORIGINS, and these; no Origin: refused.
GATEWAY_WS_ALLOWED_ORIGINS: list[str] = env.list("GATEWAY_WS_ALLOWED_ORIGINS", default=[])
# Production mode (DEBUG off, not the embedded SQLite): secure cookies and HSTS by
# default; each setting below can still be set from the environment.
GATEWAY_PRODUCTION: bool = not DEBUG and _db["ENGINE"] != "django.db.backends.sqlite3"
SESSION_COOKIE_SECURE: bool = env.bool("SESSION_COOKIE_SECURE", default=GATEWAY_PRODUCTION)
CSRF_COOKIE_SECURE: bool = env.bool("CSRF_COOKIE_SECURE", default=GATEWAY_PRODUCTION)
SESSION_COOKIE_HTTPONLY: bool = env.bool("SESSION_COOKIE_HTTPONLY", default=True)
SESSION_COOKIE_SAMESITE: str = env.str("SESSION_COOKIE_SAMESITE", default="Lax")
CSRF_COOKIE_SAMESITE: str = env.str("CSRF_COOKIE_SAMESITE", default="Lax")
# HSTS: one year in production; subdomains and preload are the domain owner's choice.
SECURE_HSTS_SECONDS: int = env.int("SECURE_HSTS_SECONDS", default=31536000 if GATEWAY_PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS: bool = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD: bool = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Behind a TLS-terminating proxy: uvicorn takes the scheme from X-Forwarded-Proto (proxies
# in FORWARDED_ALLOW_IPS); otherwise name the header: SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https
if env.str("SECURE_PROXY_SSL_HEADER", default=""):
    SECURE_PROXY_SSL_HEADER: tuple[str, str] = tuple(v.strip() for v in env.str("SECURE_PROXY_SSL_HEADER").split(",", 1))
    if len(SECURE_PROXY_SSL_HEADER) != 2 or not SECURE_PROXY_SSL_HEADER[0].startswith("HTTP_"):
        raise environ.ImproperlyConfigured("SECURE_PROXY_SSL_HEADER must be HTTP_<HEADER>,<value>, e.g. HTTP_X_FORWARDED_PROTO,https")
# Off by default: health probes and in-cluster calls speak plain HTTP; the proxy redirects.
SECURE_SSL_REDIRECT: bool = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT: list[str] = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_CONTENT_TYPE_NOSNIFF: bool = env.bool("SECURE_CONTENT_TYPE_NOSNIFF", default=True)
SECURE_REFERRER_POLICY: str = env.str("SECURE_REFERRER_POLICY", default="same-origin")
SECURE_CROSS_ORIGIN_OPENER_POLICY: str = env.str("SECURE_CROSS_ORIGIN_OPENER_POLICY", default="same-origin")
X_FRAME_OPTIONS: str = env.str("X_FRAME_OPTIONS", default="DENY")
# Content-Security-Policy of every Django page (django-csp; streaming/csp.py adds the
# page's own ws:/wss: origin to connect-src). Scripts only from the site's static files
# (or carrying the response's nonce); styles may be inline (Django's admin uses some).
from csp.constants import NONCE, NONE, SELF  # noqa: E402  (plain constants, no app)

# Where the site's forms may submit (and, in Chromium, redirect after submitting): add an
# identity provider's origin if its logout or login is a form post redirected there.
GATEWAY_CSP_FORM_ACTION: list[str] = env.list("GATEWAY_CSP_FORM_ACTION", default=[SELF])
CONTENT_SECURITY_POLICY: dict = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "worker-src": [SELF, "blob:"],  # Redoc (/api/redoc/) parses the schema in a worker
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": GATEWAY_CSP_FORM_ACTION,
        "frame-ancestors": [NONE],
    },
}
# --- end transport and browser ---
# --- single sign-on (issue 16; gateway_admin/oidc.py, docs/security/sso.md) ---
# OpenID Connect sign-in to the admin besides local accounts. Off unless a client id and an
# issuer (or a discovery URL) are set; the discovery document is read at the first sign-in.
OIDC_RP_CLIENT_ID: str = env.str("OIDC_RP_CLIENT_ID", default="")
# The client secret itself, env:VARNAME or file:/path (a mounted secret); empty for a public
# client (PKCE alone). Scrubbed from the logs once read.
OIDC_RP_CLIENT_SECRET: str = env.str("OIDC_RP_CLIENT_SECRET", default="")
# The provider's issuer (discovery at <issuer>/.well-known/openid-configuration), or the
# discovery document's URL; with both, the document's issuer must be OIDC_OP_ISSUER.
OIDC_OP_ISSUER: str = env.str("OIDC_OP_ISSUER", default="")
OIDC_OP_DISCOVERY_URL: str = env.str("OIDC_OP_DISCOVERY_URL", default="")
OIDC_RP_SCOPES: str = env.str("OIDC_RP_SCOPES", default="openid email profile")
# The claim listing the user's IdP groups (a dotted path walks into objects: realm_access.roles)
# and the role(s) each group grants: "idp-group=Role;Role,other-group=Role" or a JSON object.
# A user none of whose groups is mapped (nor a superuser group) is not signed in.
GATEWAY_OIDC_GROUPS_CLAIM: str = env.str("GATEWAY_OIDC_GROUPS_CLAIM", default="groups")
GATEWAY_OIDC_ROLE_MAP: str = env.str("GATEWAY_OIDC_ROLE_MAP", default="")
GATEWAY_OIDC_SUPERUSER_GROUPS: list[str] = env.list("GATEWAY_OIDC_SUPERUSER_GROUPS", default=[])
# Off: an SSO user gets an account of its own (oidc+<sub>) even when a local account has the
# same e-mail. On: a verified e-mail signs in as the one local account with that address.
GATEWAY_OIDC_LINK_BY_EMAIL: bool = env.bool("GATEWAY_OIDC_LINK_BY_EMAIL", default=False)
# ID token signature algorithms accepted (asymmetric only) and clock leeway on exp/iat.
GATEWAY_OIDC_ALGORITHMS: list[str] = env.list("GATEWAY_OIDC_ALGORITHMS", default=["RS256", "ES256"])
GATEWAY_OIDC_LEEWAY_S: int = env.int("GATEWAY_OIDC_LEEWAY_S", default=60)
GATEWAY_OIDC_TIMEOUT_S: float = env.float("GATEWAY_OIDC_TIMEOUT_S", default=5.0)  # each call to the provider
# The callback URL registered at the provider (https://gw.example.com/oidc/callback/);
# empty: built from the request's scheme and host.
GATEWAY_OIDC_REDIRECT_URI: str = env.str("GATEWAY_OIDC_REDIRECT_URI", default="")
GATEWAY_OIDC_TOKEN_AUTH: str = env.str("GATEWAY_OIDC_TOKEN_AUTH", default="auto")  # or client_secret_basic / _post
# Logout also at the provider (its end_session_endpoint, when it has one), then back here.
GATEWAY_OIDC_IDP_LOGOUT: bool = env.bool("GATEWAY_OIDC_IDP_LOGOUT", default=True)
GATEWAY_OIDC_POST_LOGOUT_REDIRECT_URI: str = env.str("GATEWAY_OIDC_POST_LOGOUT_REDIRECT_URI", default="")
# An SSO session lasts this long (seconds), so a group removed at the provider ends the
# role by the next sign-in at the latest.
GATEWAY_OIDC_SESSION_S: int = env.int("GATEWAY_OIDC_SESSION_S", default=8 * 3600)
GATEWAY_OIDC_ALLOW_HTTP: bool = env.bool("GATEWAY_OIDC_ALLOW_HTTP", default=False)  # loopback is always allowed
GATEWAY_OIDC_CA_BUNDLE: str = env.str("GATEWAY_OIDC_CA_BUNDLE", default="")  # a private CA's PEM file
GATEWAY_OIDC_METADATA_TTL_S: float = env.float("GATEWAY_OIDC_METADATA_TTL_S", default=3600.0)
if OIDC_RP_CLIENT_ID and not (OIDC_OP_ISSUER or OIDC_OP_DISCOVERY_URL):
    raise environ.ImproperlyConfigured("OIDC_RP_CLIENT_ID is set: set OIDC_OP_ISSUER or OIDC_OP_DISCOVERY_URL too")
if not 0 <= GATEWAY_OIDC_LEEWAY_S <= 300:
    raise environ.ImproperlyConfigured("GATEWAY_OIDC_LEEWAY_S must be between 0 and 300 seconds")
if GATEWAY_OIDC_SESSION_S < 60:
    raise environ.ImproperlyConfigured("GATEWAY_OIDC_SESSION_S must be at least 60 seconds")
if GATEWAY_OIDC_TOKEN_AUTH not in ("auto", "client_secret_basic", "client_secret_post"):
    raise environ.ImproperlyConfigured("GATEWAY_OIDC_TOKEN_AUTH must be auto, client_secret_basic or client_secret_post")
if OIDC_RP_CLIENT_ID:
    AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend", "gateway_admin.oidc.GatewayOIDCBackend"]
    # The logout form's redirect to the provider's end_session_endpoint is a form action.
    from urllib.parse import urlsplit as _urlsplit  # noqa: E402

    _idp = _urlsplit(OIDC_OP_ISSUER or OIDC_OP_DISCOVERY_URL)
    if "GATEWAY_CSP_FORM_ACTION" in vars() and "GATEWAY_CSP_FORM_ACTION" not in os.environ and _idp.netloc:
        GATEWAY_CSP_FORM_ACTION.append(f"{_idp.scheme}://{_idp.netloc}")
# --- end single sign-on ---
