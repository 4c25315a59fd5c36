# syntax=docker/dockerfile:1
# The gateway image: one image, three roles (the command picks one).
#   gateway  uvicorn gateway_project.asgi:application ...   (the default CMD below)
#   worker   celery -A gateway_project worker --loglevel=INFO
#   beat     celery -A gateway_project beat --loglevel=INFO  (exactly one per deployment)
#   migrate  python manage.py migrate --noinput               (before a new release's processes)
# Configuration is the environment only (docs/operations/deployment.md); no secret is baked in.
# tests/test_deploy_files.py checks this file, and tests/test_scale_processes.py runs its CMD.

# --- build: a virtualenv with the runtime requirements -------------------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# psycopg[binary], uvloop, httptools, hiredis and orjson ship wheels: no compiler needed.
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements.txt /tmp/requirements.txt
# Only requirements.txt's runtime section: the test tools and the semantic cache's
# optional extra (numpy, onnxruntime, torch: gigabytes) stay out of the image.
RUN sed -n '/^# --- runtime ---$/,/^# --- /p' /tmp/requirements.txt | grep -v '^#' > /tmp/runtime.txt \
    && pip install -r /tmp/runtime.txt

# --- runtime: the virtualenv and the code, run as an unprivileged user ----------------
FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=gateway_project.settings \
    GATEWAY_VAR_DIR=/var/lib/gateway \
    WEB_CONCURRENCY=2
RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --home-dir /app --shell /usr/sbin/nologin gateway \
    && install -d -o gateway -g gateway -m 0750 /var/lib/gateway
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY . /app
# Static files (admin, reports) collected into the image for a CDN or proxy to copy; the
# app also serves them itself. The build needs no database: settings default to SQLite.
RUN GATEWAY_VAR_DIR=/app/var python manage.py collectstatic --noinput -v0 \
    && python -m compileall -q /app >/dev/null
USER gateway:gateway
EXPOSE 8000
# Liveness only: /readyz (database, Redis, ledger) is for the load balancer, which stops
# sending traffic; restarting a container because PostgreSQL blinked would not help.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# README's production flags. Workers: WEB_CONCURRENCY (uvicorn's default for --workers);
# with more than one, set PROMETHEUS_MULTIPROC_DIR so one scrape covers every worker.
# Proxy headers are trusted from FORWARDED_ALLOW_IPS (uvicorn's default: 127.0.0.1).
CMD ["uvicorn", "gateway_project.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--timeout-graceful-shutdown", "25"]
