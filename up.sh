#!/usr/bin/env bash
# Serves both apps side by side under one server: Flask (WSGI) on FLASK_PORT,
# FastAPI (ASGI) on FASTAPI_PORT, each with the same number of worker processes.
#
#   ./up.sh                              # granian on 127.0.0.1:8080 and :8081
#   HOST=0.0.0.0 WORKERS=2 ./up.sh
#
# Settings, all from the environment and checked before anything starts:
#   SERVER            granian (default)
#   HOST              address to listen on (127.0.0.1)
#   FLASK_PORT        8080
#   FASTAPI_PORT      8081
#   WORKERS           worker processes per app, 1-64 (1)
#   THREADS           threads per Flask worker, 1-256 (16); FastAPI runs its
#                     event loop on one thread per worker (granian allows no more)
#   METRICS_INTERVAL  seconds between samples (10); METRICS_SLOTS samples kept (60)
#
# It stays in the foreground. SIGTERM or SIGINT stops both servers; if either
# server exits on its own, up.sh stops the other and exits non-zero.
set -euo pipefail
cd "$(dirname "$0")"

die() {
  echo "up.sh: $*" >&2
  exit 2
}

in_range() { [[ $1 =~ ^[0-9]{1,6}$ ]] && ((10#$1 >= $2 && 10#$1 <= $3)); } # VALUE MIN MAX

SERVER=${SERVER:-granian}
HOST=${HOST:-127.0.0.1}
FLASK_PORT=${FLASK_PORT:-8080}
FASTAPI_PORT=${FASTAPI_PORT:-8081}
WORKERS=${WORKERS:-1}
THREADS=${THREADS:-16}

[[ $SERVER == granian ]] || die "SERVER='$SERVER' is not a server this script runs (granian)"
[[ -n $HOST ]] || die "HOST is empty"
in_range "$FLASK_PORT" 1 65535 || die "FLASK_PORT='$FLASK_PORT' is not a port number (1-65535)"
in_range "$FASTAPI_PORT" 1 65535 || die "FASTAPI_PORT='$FASTAPI_PORT' is not a port number (1-65535)"
((10#$FLASK_PORT != 10#$FASTAPI_PORT)) || die "FLASK_PORT and FASTAPI_PORT are both $FLASK_PORT"
in_range "$WORKERS" 1 64 || die "WORKERS='$WORKERS' is not a number of processes (1-64)"
in_range "$THREADS" 1 256 || die "THREADS='$THREADS' is not a number of threads (1-256)"

# The project's virtualenv where there is one (a host), else the python on PATH (the image).
PYTHON=python3
[[ -x .venv/bin/python ]] && PYTHON=.venv/bin/python

# The apps refuse bad METRICS_* settings at import; say so once, here, before any server starts.
"$PYTHON" - <<'PY' || exit 2
import sys
import metrics
try:
    metrics.MetricsConfig.from_env()
except metrics.ConfigError as error:
    sys.exit(f"up.sh: {error}")
PY

pids=()
signal_servers() { # SIGNAL: to each server's whole process group, orphaned workers included
  local pid
  for pid in "${pids[@]}"; do kill -"$1" -- "-$pid" 2>/dev/null || true; done
}
stop() {
  trap - TERM INT
  signal_servers TERM
  # Give the servers 10 s to finish their requests and stop their workers.
  for _ in {1..50}; do
    [[ -z $(jobs -pr) ]] && break
    sleep 0.2
  done
  signal_servers KILL
  wait 2>/dev/null || true
}
trap 'stop; exit 0' TERM INT

serve() { # port module interface [granian options]
  # Each server leads its own process group, so that stop() reaches its workers
  # even when its master has died and left them behind.
  setsid "$PYTHON" -m granian --host "$HOST" --port "$1" --workers "$WORKERS" --no-ws \
    --log-level warning --interface "${@:3}" "$2:app" &
  pids+=($!)
}
serve "$FLASK_PORT" flask-wsgi wsgi --blocking-threads "$THREADS"
serve "$FASTAPI_PORT" fastapi-asgi asgi
echo "up.sh: granian serves Flask on http://$HOST:$FLASK_PORT and FastAPI on http://$HOST:$FASTAPI_PORT ($WORKERS worker(s) each)"

set +e
wait -n "${pids[@]}"
status=$?
set -e
echo "up.sh: a server exited with status $status; stopping the other" >&2
stop
exit $((status == 0 ? 1 : status))
