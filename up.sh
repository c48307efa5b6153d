#!/usr/bin/env bash
# Serves both apps side by side under one server: Flask (WSGI) on FLASK_PORT and
# FastAPI (ASGI) on FASTAPI_PORT, with the same processes and threads each.
# It is the container's command, and works on a host as well.
#
#   ./up.sh                              # NGINX Unit if unitd is on PATH, else granian
#   SERVER=granian HOST=0.0.0.0 WORKERS=2 ./up.sh
#
# Settings, all from the environment and checked before anything starts:
#   SERVER            unit or granian (default: unit where unitd is on PATH)
#   UNITD             the unitd to run (default: unitd on PATH)
#   HOST              address to listen on (127.0.0.1; 0.0.0.0 for every address)
#   FLASK_PORT        8080
#   FASTAPI_PORT      8081
#   WORKERS           processes per app, 1-64 (default: conf.json's "processes")
#   THREADS           threads per process, 1-256 (default: conf.json's "threads");
#                     under granian FastAPI's event loop has one thread (granian
#                     allows no more for ASGI), so THREADS applies to Flask only
#   METRICS_INTERVAL  seconds between samples (10); METRICS_SLOTS samples kept (60)
#   UNIT_CONF         another Unit configuration to try instead of conf.json
#
# It stays in the foreground. SIGTERM, SIGINT or SIGHUP (a closed terminal) stops
# everything, as does any other way up.sh ends (an error, a closed stdout); if a
# server exits on its own, up.sh stops the rest and exits non-zero. Under Unit the
# control API listens on a unix socket only, in a state directory that is
# removed on exit, so nothing saved rebinds the ports at the next start.
set -euo pipefail
cd "$(dirname "$0")"

die() {
  echo "up.sh: $*" >&2
  exit 2
}

in_range() { [[ $1 =~ ^[0-9]{1,6}$ ]] && ((10#$1 >= $2 && 10#$1 <= $3)); } # VALUE MIN MAX

# The project's virtualenv where there is one (a host), else the python on PATH (the image).
PYTHON=python3
[[ -x .venv/bin/python ]] && PYTHON=.venv/bin/python

UNITD=${UNITD:-unitd}
if [[ -z ${SERVER:-} ]]; then
  SERVER=granian
  command -v "$UNITD" >/dev/null && SERVER=unit
fi
read -r conf_processes conf_threads < <("$PYTHON" unit_conf.py fairness) ||
  die "cannot read processes and threads from ${UNIT_CONF:-conf.json}"
export HOST=${HOST:-127.0.0.1}
export FLASK_PORT=${FLASK_PORT:-8080}
export FASTAPI_PORT=${FASTAPI_PORT:-8081}
export WORKERS=${WORKERS:-$conf_processes}
export THREADS=${THREADS:-$conf_threads}

[[ $SERVER == unit || $SERVER == granian ]] || die "SERVER='$SERVER' is neither unit nor granian"
[[ -n $HOST ]] || die "HOST is empty"
in_range "$FLASK_PORT" 1 65535 || die "FLASK_PORT='$FLASK_PORT' is not a port number (1-65535)"
in_range "$FASTAPI_PORT" 1 65535 || die "FASTAPI_PORT='$FASTAPI_PORT' is not a port number (1-65535)"
((10#$FLASK_PORT != 10#$FASTAPI_PORT)) || die "FLASK_PORT and FASTAPI_PORT are both $FLASK_PORT"
in_range "$WORKERS" 1 64 || die "WORKERS='$WORKERS' is not a number of processes (1-64)"
in_range "$THREADS" 1 256 || die "THREADS='$THREADS' is not a number of threads (1-256)"
if [[ $SERVER == unit ]]; then
  command -v "$UNITD" >/dev/null || die "no unitd ('$UNITD') on PATH; SERVER=granian serves the apps without it"
  command -v curl >/dev/null || die "curl is needed to configure Unit"
fi

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
state=""
# shellcheck disable=SC2329 # called by stop()
signal_servers() { # SIGNAL: to each server's whole process group, orphaned workers included
  local pid
  for pid in "${pids[@]}"; do kill -"$1" -- "-$pid" 2>/dev/null || true; done
}
# shellcheck disable=SC2329 # called by stop()
unit_control() { # [curl options] PATH: a request to Unit's control API
  curl -sS --max-time 2 --unix-socket "$state/control.sock" "${@:1:$#-1}" "http://localhost/${!#}"
}
# shellcheck disable=SC2329 # stop() runs from the EXIT trap below
stop() { # drain and stop every server within 15 s, then remove the state directory
  local code=$? busy="" now why="within 15 s"
  # 15 s for the requests already accepted, running or queued, to get their answers
  # (the longest, /io?ms=10000, takes 10 s) and for the servers to stop; start.sh
  # gives the container 20 s. A second signal cuts the wait short.
  local deadline_us=$((${EPOCHREALTIME/./} + 15000000))
  trap 'deadline_us=0 why="before a second signal"' TERM INT HUP
  if [[ -S $state/control.sock ]]; then
    # Unit's own SIGTERM gives every request in flight an empty reply: first close the
    # listeners (new connections are refused), then wait until no connection has a
    # request left, in flight or queued, and only then stop unitd.
    unit_control -X PUT --data-binary '{}' config/listeners >/dev/null || true
    while busy=$(unit_control status/connections/active 2>/dev/null | tr -dc 0-9) &&
      [[ $busy =~ ^[1-9] ]]; do
      now=${EPOCHREALTIME/./}
      ((now < deadline_us)) || break
      sleep 0.1
    done
  fi
  signal_servers TERM # granian stops accepting and lets its workers finish every request
  while [[ -n $(jobs -pr) ]]; do
    now=${EPOCHREALTIME/./}
    ((now < deadline_us)) || break
    sleep 0.1
  done
  if [[ $busy =~ ^[1-9] || -n $(jobs -pr) ]]; then
    echo "up.sh: the servers had not answered every request $why; stopped them" \
      "anyway${busy:+ (Unit still had $busy connection(s) with a request)}" >&2
    ((code != 0)) || code=1
  fi
  signal_servers KILL
  wait 2>/dev/null || true
  [[ -z $state ]] || rm -rf "$state"
  exit "$code"
}
# The servers lead sessions of their own, so a signal up.sh dies of would leave them
# running: every way out of up.sh goes through stop().
trap stop EXIT
trap 'exit 0' TERM INT HUP
trap 'exit 141' PIPE # stdout closed (up.sh | head): 128 + SIGPIPE, as if killed by it

start() { # command...: in a process group of its own, so that stop() reaches its workers
  # even when their master has died and left them behind
  setsid "$@" &
  pids+=($!)
}

serve_granian() { # port module interface [granian options]
  # As many open files as allowed: every connection, idle or not, takes one.
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  local files connections timeout_s
  files=$(ulimit -n)
  [[ $files =~ ^[0-9]+$ ]] || files=1048576
  # granian's backpressure caps a worker's open connections, idle ones included (its
  # default, 1,024, let idle clients starve the app): let the open files be the cap.
  connections=$((files > 256 ? files - 128 : files / 2))
  # As Unit does with conf.json's settings.http: a connection that has not sent a whole
  # request's headers, or that sits idle between requests, is closed after that many
  # seconds. HTTP/1 only (as Unit): with HTTP/2 possible, granian would wait for the
  # first byte of a connection with no time limit.
  timeout_s=$("$PYTHON" unit_conf.py header-read-timeout)
  # A worker that dies is replaced at once; granian itself exits (and up.sh with it)
  # only when a replaced worker dies again within 5.5 s.
  start "$PYTHON" -m granian --host "$HOST" --port "$1" --workers "$WORKERS" --no-ws \
    --http 1 --http1-header-read-timeout "$((timeout_s * 1000))" \
    --backlog 4096 --backpressure "$connections" --respawn-failed-workers \
    --log-level warning --interface "${@:3}" "$2:app"
}

serve_unit() {
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true # every connection takes an open file
  state=$(mktemp -d "${TMPDIR:-/tmp}/flask-vs-fastapi-unit.XXXXXX")
  local socket=$state/control.sock
  local as_user=()
  # On a host the apps run as whoever runs up.sh, as under granian, so they can
  # read its virtualenv; in the image, as Unit's own unprivileged "unit" user.
  [[ $PYTHON == python3 ]] || as_user=(--user "$(id -un)" --group "$(id -gn)")
  start "$UNITD" --no-daemon --control "unix:$socket" --statedir "$state" \
    --pid "$state/unit.pid" --tmpdir "$state" --log /dev/stderr "${as_user[@]}"
  for _ in {1..100}; do # up to 10 s for the control socket
    [[ -S $socket ]] && break
    [[ -n $(jobs -pr) ]] || break
    sleep 0.1
  done
  [[ -S $socket ]] || {
    echo "up.sh: unitd did not open its control socket within 10 s" >&2
    exit 1
  }
  # The settings (conf.json's timeouts), the applications, and the listeners once
  # the applications run: Unit 1.34 can stop answering an app for good when a
  # request reaches it while it starts.
  local part answer code
  for part in settings applications listeners; do
    "$PYTHON" unit_conf.py "$part" >"$state/$part.json"
    answer=$(curl -sS -w '\n%{http_code}' -X PUT --data-binary "@$state/$part.json" \
      --unix-socket "$socket" "http://localhost/config/$part") || answer=$'curl failed\n000'
    code=${answer##*$'\n'}
    if [[ $code != 200 ]]; then
      echo "up.sh: NGINX Unit rejected the configuration's $part (HTTP $code):" >&2
      echo "${answer%$'\n'*}" >&2
      exit 1
    fi
  done
}

if [[ $SERVER == unit ]]; then
  serve_unit
else
  serve_granian "$FLASK_PORT" flask-wsgi wsgi --blocking-threads "$THREADS"
  serve_granian "$FASTAPI_PORT" fastapi-asgi asgi
fi
echo "up.sh: $SERVER serves Flask on http://$HOST:$FLASK_PORT and FastAPI on" \
  "http://$HOST:$FASTAPI_PORT ($WORKERS process(es), $THREADS thread(s) each)"

set +e
wait -n "${pids[@]}"
status=$?
set -e
echo "up.sh: a server exited with status $status; stopping the rest" >&2
exit $((status == 0 ? 1 : status))
