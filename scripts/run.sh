#!/usr/bin/env bash
# One command from a fresh clone to a running gateway on the embedded default:
# virtualenv + requirements, migrations, demo configuration, an admin login,
# a demo virtual key, a Celery worker with embedded beat (filesystem broker, no
# Redis), and uvicorn serving HTTP + websockets. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
PY=.venv/bin/python
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
export DJANGO_SETTINGS_MODULE=gateway_project.settings
mkdir -p var

$PY manage.py migrate --noinput -v0
$PY manage.py collectstatic --noinput -v0
$PY manage.py gateway_import demo/demo.yaml >/dev/null

# Admin login: ADMIN_USER / ADMIN_PASSWORD, or a generated password kept in var/.
ADMIN_USER=${ADMIN_USER:-admin}
if [ -z "${ADMIN_PASSWORD:-}" ]; then
  if [ ! -s var/admin-password ]; then
    $PY -c "import secrets; print(secrets.token_urlsafe(12))" > var/admin-password
    chmod 600 var/admin-password
  fi
  ADMIN_PASSWORD=$(cat var/admin-password)
fi
ADMIN_USER="$ADMIN_USER" ADMIN_PASSWORD="$ADMIN_PASSWORD" $PY manage.py shell -c "
import os
from django.contrib.auth import get_user_model
User = get_user_model()
user, _ = User.objects.get_or_create(username=os.environ['ADMIN_USER'], defaults={'is_staff': True, 'is_superuser': True})
user.is_staff = user.is_superuser = True
user.set_password(os.environ['ADMIN_PASSWORD'])
user.save()
" >/dev/null

# A demo virtual key, issued once and kept in var/ (keys are stored hashed only).
if [ ! -s var/demo-key ]; then
  $PY manage.py issue_key --name demo-key --team demo > var/demo-key
  chmod 600 var/demo-key
fi
DEMO_KEY=$(cat var/demo-key)

$PY -m celery -A gateway_project worker -B --loglevel=WARNING --concurrency=1 >var/celery.log 2>&1 &
CELERY_PID=$!
trap 'kill $CELERY_PID 2>/dev/null || true' EXIT INT TERM

cat <<MSG

  LLM gateway (embedded default: SQLite, in-process state, demo data)

  API        http://$HOST:$PORT/v1        (any OpenAI SDK: base_url=http://$HOST:$PORT/v1)
  Admin      http://$HOST:$PORT/admin/    user: $ADMIN_USER   password: $ADMIN_PASSWORD
  Demo key   $DEMO_KEY
  Metrics    http://$HOST:$PORT/metrics

  Try it:
    curl http://$HOST:$PORT/v1/chat/completions -H "Authorization: Bearer $DEMO_KEY" \\
      -H "Content-Type: application/json" \\
      -d '{"model": "chat-default", "messages": [{"role": "user", "content": "Hello"}]}'

MSG
.venv/bin/uvicorn gateway_project.asgi:application --host "$HOST" --port "$PORT"
