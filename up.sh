#!/usr/bin/env bash
# Serves both apps side by side under one server: Flask (WSGI) on FLASK_PORT and
# FastAPI (ASGI) on FASTAPI_PORT, with the same processes and threads each.
# It is the container's command, and works on a host as well.
#
#   ./up.sh                              # NGINX Unit if unitd is on PATH, else granian
#   SERVER=granian HOST=0.0.0.0 WORKERS=2 ./up.sh
#   ./up.sh --help                       # this help; it takes no other argument
#
# Settings, all from the environment and checked before anything starts:
#   SERVER            unit or granian (default: unit where unitd is on PATH)
#   VENV              the virtualenv with requirements.txt installed (.venv; /venv
#                     in the image); under Unit its Python must be the one Unit's
#                     Python module embeds
#   UNITD             the unitd to run (default: unitd on PATH)
#   UNIT_USER         the user Unit runs the apps as (default: whoever runs up.sh,
#                     so that they can read VENV; "unit" in the image)
#   HOST              address to listen on (127.0.0.1; 0.0.0.0 for every address)
#   FLASK_PORT        8080
#   FASTAPI_PORT      8081
#   WORKERS           processes per app, 1-64 (default: conf.json's "processes")
#   THREADS           threads per process, 1-256 (default: conf.json's "threads");
#                     under granian FastAPI's event loop has one thread (granian
#                     allows no more for ASGI), so THREADS applies to Flask only
#   METRICS_INTERVAL  seconds between samples, 0.1-3600 (10)
#   METRICS_SLOTS     samples kept, 1-20000 (60)
#   UNIT_CONF         another Unit configuration to try instead of conf.json
#
# It says that it serves once both apps answer. It stays in the foreground.
# SIGTERM, SIGINT or SIGHUP (a closed terminal) stops
# everything, as does any other way up.sh ends (an error, a closed stdout); a stop
# drains: new connections are refused, and the requests already accepted get up to
# 15 s to be answered. A killed worker is replaced; if a server itself exits on its
# own, up.sh stops the rest and exits non-zero. Under Unit the
# control API listens on a unix socket only, in a state directory that is
# removed on exit, so nothing saved rebinds the ports at the next start.
#
# Exit codes: 0 stopped by a signal, every request answered (1 if some were cut off
# at 15 s, or a second signal cut the wait short); 2 a bad setting or argument; 1 anything else
# that stopped it before it served (a port in use, a missing package, a server
# that failed to start); a server's own status if one exits later (1 if that was 0).
set -euo pipefail
# A relative VENV is the caller's, as any path given on the command line would be.
[[ -z ${VENV:-} || $VENV == /* ]] || VENV=$PWD/$VENV
cd "$(dirname "$0")"

die() {
  echo "up.sh: $*" >&2
  exit 2
}
fail() {
  echo "up.sh: $*" >&2
  exit 1
}

case ${1:-} in
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
esac
(($# == 0)) || die "unknown argument '$1': up.sh takes its settings from the environment (--help lists them)"

in_range() { [[ $1 =~ ^[0-9]{1,6}$ ]] && ((10#$1 >= $2 && 10#$1 <= $3)); } # VALUE MIN MAX

if [[ -n ${VENV:-} ]]; then
  [[ -x $VENV/bin/python ]] || die "VENV='$VENV' is no virtualenv (it has no bin/python)"
else
  VENV=$PWD/.venv
  [[ -x $VENV/bin/python ]] || fail "there is no virtualenv in .venv: make one with" \
    "'python3 -m venv .venv && .venv/bin/pip install -r requirements.txt'" \
    "(./start.sh --local does that), or name another with VENV=path"
fi
export VENV
PYTHON=$VENV/bin/python

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
export SERVER

[[ $SERVER == unit || $SERVER == granian ]] || die "SERVER='$SERVER' is neither unit nor granian"
[[ -n $HOST ]] || die "HOST is empty"
in_range "$FLASK_PORT" 1 65535 || die "FLASK_PORT='$FLASK_PORT' is not a port number (1-65535)"
in_range "$FASTAPI_PORT" 1 65535 || die "FASTAPI_PORT='$FASTAPI_PORT' is not a port number (1-65535)"
((10#$FLASK_PORT != 10#$FASTAPI_PORT)) || die "FLASK_PORT and FASTAPI_PORT are both $FLASK_PORT"
in_range "$WORKERS" 1 64 || die "WORKERS='$WORKERS' is not a number of processes (1-64)"
in_range "$THREADS" 1 256 || die "THREADS='$THREADS' is not a number of threads (1-256)"
if [[ $SERVER == unit ]]; then
  command -v "$UNITD" >/dev/null || die "no unitd ('$UNITD') on PATH; SERVER=granian serves the apps without it"
  command -v curl >/dev/null || fail "curl is needed to configure Unit"
  UNIT_USER=${UNIT_USER:-$(id -un)}
  id -u "$UNIT_USER" >/dev/null 2>&1 || die "UNIT_USER='$UNIT_USER' is no user here"
fi

unit_python() { # the Python version and file of each of unitd's Python modules, one a line
  local modules module version
  modules=$("$UNITD" --help 2>&1 | sed -n '/^ *--modulesdir/{n;s/.*default: "\(.*\)".*/\1/p;q;}') || true
  for module in "${modules:-/nonexistent}"/python*.unit.so; do
    [[ -e $module ]] || continue
    # python3.11.unit.so, or python3.unit.so linked to libpython3.11
    version=$(basename "$module" | grep -oE '^python3\.[0-9]+' ||
      grep -aoE 'libpython3\.[0-9]+' "$module" | sed -n 1p || true)
    [[ -z $version ]] || echo "${version##*python} $module"
  done
}

if [[ $SERVER == unit ]]; then
  # Unit runs the apps on its own embedded Python, with VENV's packages: the two
  # must be one version, or the apps fail to import with no word of why.
  venv_python=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  modules=$(unit_python)
  [[ -n $modules ]] || fail "$UNITD has no Python module (python3.X.unit.so in its modules" \
    "directory, see $UNITD --help): build Unit's Python module, or SERVER=granian serves without it"
  if ! grep -q "^$venv_python " <<<"$modules"; then
    read -r unit_version unit_module <<<"$modules"
    fail "Unit's Python module $unit_module embeds Python $unit_version, but VENV $VENV has" \
      "Python $venv_python: make the virtualenv with Python $unit_version" \
      "(python$unit_version -m venv DIR && DIR/bin/pip install -r requirements.txt, then VENV=DIR)," \
      "or use a unitd whose Python module is built for $venv_python"
  fi
fi

listen_check() { # PORT_VARIABLE: exit with one line if HOST:port cannot be listened on
  "$PYTHON" - "$HOST" "$1" "${!1}" <<'PY'
import errno, socket, sys

host, variable, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    family, kind, _, _, address = socket.getaddrinfo(
        "0.0.0.0" if host == "*" else host.strip("[]"), port, type=socket.SOCK_STREAM
    )[0]
except socket.gaierror as error:
    print(f"up.sh: HOST='{host}' is no address here: {error.strerror}", file=sys.stderr)
    sys.exit(2)
with socket.socket(family, kind) as probe:
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind(address)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            sys.exit(f"up.sh: port {port} ({variable}) is already in use on {host}")
        sys.exit(f"up.sh: cannot listen on {host} port {port} ({variable}): {error.strerror}")
PY
}

# Before any server starts: the packages, the METRICS_* settings (the apps refuse
# bad ones at import; say so once, here) and the two ports.
"$PYTHON" - <<'PY'
import importlib.util, os, sys

venv = os.environ["VENV"]
needed = ["flask", "fastapi", "psutil", "pydantic"]
if os.environ["SERVER"] == "granian":
    needed.append("granian")
missing = [name for name in needed if importlib.util.find_spec(name) is None]
if missing:
    sys.exit(
        f"up.sh: the virtualenv {venv} lacks {', '.join(missing)}:"
        f" {venv}/bin/pip install -r requirements.txt"
    )

from metrics.config import ConfigError, MetricsConfig

try:
    MetricsConfig.from_env()
except ConfigError as error:
    print(f"up.sh: {error}", file=sys.stderr)
    sys.exit(2)
PY
listen_check FLASK_PORT
listen_check FASTAPI_PORT

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

unit_log_cause() { # PART: why Unit refused PART, in one line each, from its log (its answer
  # says only "Failed to apply new configuration")
  "$PYTHON" - "$state/unit.log" "$1" >&2 <<'PY' || true
import re, sys

log = open(sys.argv[1], errors="replace").read()
if sys.argv[2] == "applications":
    # [alert] 12#12 Python failed to import module "flask-wsgi", then the app's traceback
    stamp = r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d "
    for match in re.finditer(rf"\] \d+#\d+ (Python failed [^\n]*)\n((?:(?!{stamp}).*\n)*)", log):
        trace = [line for line in match[2].splitlines() if line.strip()]
        print(f"up.sh: {match[1]}: {trace[-1] if trace else 'Unit logged no more'}")
else:
    for port in dict.fromkeys(re.findall(r"bind\(.*?:(\d+)\\?\"?\) failed \(98", log)):
        print(f"up.sh: port {port} is already in use: Unit could not listen on it")
PY
}

serve_unit() {
  state=$(mktemp -d "${TMPDIR:-/tmp}/flask-vs-fastapi-unit.XXXXXX")
  local socket=$state/control.sock
  # Unit's log goes to stderr, and to a file that up.sh reads for what Unit's
  # answers leave out (an app's own import error, a port held).
  start "$UNITD" --no-daemon --control "unix:$socket" --statedir "$state" \
    --pid "$state/unit.pid" --tmpdir "$state" --log /dev/stderr \
    --user "$UNIT_USER" --group "$(id -gn "$UNIT_USER")" 2> >(tee -a "$state/unit.log" >&2)
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
      sleep 0.2 # Unit's log may come a moment after its answer
      unit_log_cause "$part"
      echo "up.sh: NGINX Unit rejected the configuration's $part (HTTP $code):" >&2
      echo "${answer%$'\n'*}" >&2
      exit 1
    fi
  done
}

# As many open files as allowed, under either server: every connection, idle or not,
# takes one.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [[ $SERVER == unit ]]; then
  serve_unit
else
  serve_granian "$FLASK_PORT" flask-wsgi wsgi --blocking-threads "$THREADS"
  serve_granian "$FASTAPI_PORT" fastapi-asgi asgi
fi

case $HOST in # where a client reaches HOST from here
  0.0.0.0 | \*) probe_host=127.0.0.1 ;;
  :: | \[::\]) probe_host=::1 ;;
  *) probe_host=${HOST#[} probe_host=${probe_host%]} ;;
esac
answers() { # PORT: an app answers GET / there (bash's /dev/tcp: the image may have no curl)
  # shellcheck disable=SC2016  # $1 and $2 are the inner shell's
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2" &&
    printf "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n" >&3 && grep -q "\"framework\"" <&3' \
    _ "$probe_host" "$1" 2>/dev/null
}
# Up to 60 s until both apps answer (an app's first answer waits for its import).
# Whether each server still runs is asked with kill -0, not jobs: jobs would report
# and forget a server that died, and the wait -n below would then miss it.
deadline=$((SECONDS + 60))
while true; do
  answered=0
  answers "$FLASK_PORT" && answers "$FASTAPI_PORT" && answered=1
  for index in "${!pids[@]}"; do
    kill -0 "${pids[index]}" 2>/dev/null && continue
    # A granian that exits before it has workers failed to bind: most often its port
    # was taken since the check above (granian serves Flask first, then FastAPI).
    if [[ $SERVER == granian ]] && ! kill -0 -- "-${pids[index]}" 2>/dev/null; then
      port_variables=(FLASK_PORT FASTAPI_PORT)
      listen_check "${port_variables[index]}"
    fi
    fail "a server exited before both apps answered; its output is above"
  done
  ((answered)) && break
  ((SECONDS < deadline)) || fail "the apps did not answer within 60 s"
  sleep 0.1
done
echo "up.sh: $SERVER serves Flask on http://$HOST:$FLASK_PORT and FastAPI on" \
  "http://$HOST:$FASTAPI_PORT ($WORKERS process(es), $THREADS thread(s) each)"

set +e
wait -n "${pids[@]}"
status=$?
set -e
echo "up.sh: a server exited with status $status; stopping the rest" >&2
exit $((status == 0 ? 1 : status))
