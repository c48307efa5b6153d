#!/usr/bin/env bash
# Runs both apps: Flask on http://127.0.0.1:8080 and FastAPI on http://127.0.0.1:8081.
#
#   ./start.sh                    # one container, NGINX Unit serving both apps
#   ./start.sh --server granian   # the same container with granian instead
#   ./start.sh --cpus 1 --memory 512m
#   ./start.sh --stop             # remove the container
#
# With Docker it builds the image (Dockerfile, target = the server), replaces
# a container of the same name, publishes both ports on 127.0.0.1 (--public:
# on every address), waits until both apps answer and says what to do next.
# Where Docker is not installed or its daemon is not reachable, it says so and
# runs ./up.sh here instead, in .venv, in the foreground: under Unit where
# unitd is on PATH, else under granian.
#
# Options: --server unit|granian, --cpus N and --memory SIZE (the same limits
# for both apps: they share the container), --public, --name NAME (flask-vs-fastapi),
# --local (skip Docker), --stop. Environment: FLASK_PORT and FASTAPI_PORT (the
# host's ports), METRICS_INTERVAL and METRICS_SLOTS (passed on), UNIT_IMAGE and
# PYTHON_IMAGE (base images, as build arguments).
set -euo pipefail
cd "$(dirname "$0")"

die() {
  echo "start.sh: $*" >&2
  exit 1
}
usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

server="" cpus="" memory="" bind=127.0.0.1 name=flask-vs-fastapi local=0 stop=0
while (($#)); do
  case $1 in
    --server) server=${2:-}; shift ;;
    --cpus) cpus=${2:-}; shift ;;
    --memory) memory=${2:-}; shift ;;
    --name) name=${2:-}; shift ;;
    --public) bind=0.0.0.0 ;;
    --local) local=1 ;;
    --stop) stop=1 ;;
    -h | --help) usage ;;
    *) echo "start.sh: unknown option '$1'" >&2; usage ;;
  esac
  shift
done
[[ -z $server || $server == unit || $server == granian ]] ||
  die "--server must be unit or granian, not '$server'"
[[ -z $cpus || $cpus =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--cpus takes a number of cores, not '$cpus'"
[[ -z $memory || $memory =~ ^[0-9]+[bkmgBKMG]?$ ]] || die "--memory takes a size such as 512m, not '$memory'"
[[ $name =~ ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$ ]] || die "--name '$name' is not a container name"
flask_port=${FLASK_PORT:-8080}
fastapi_port=${FASTAPI_PORT:-8081}

answers() { # PORT: one of the apps answers GET / there (bash's /dev/tcp: no curl needed)
  # shellcheck disable=SC2016  # $1 is the inner shell's
  timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" &&
    printf "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n" >&3 && grep -q "\"framework\"" <&3' _ "$1" 2>/dev/null
}

docker_reachable() {
  command -v docker >/dev/null || { echo "start.sh: Docker is not installed" >&2; return 1; }
  docker info >/dev/null 2>&1 || { echo "start.sh: the Docker daemon is not reachable" >&2; return 1; }
}

if ((stop)); then
  docker_reachable || exit 1
  if docker rm -f "$name" >/dev/null 2>&1; then
    echo "start.sh: removed $name"
  else
    echo "start.sh: no container $name"
  fi
  exit 0
fi

if ((local)) || ! docker_reachable; then
  [[ -z $cpus && -z $memory ]] || die "--cpus and --memory need Docker"
  if [[ -z $server ]]; then
    server=granian
    command -v "${UNITD:-unitd}" >/dev/null && server=unit
  fi
  echo "start.sh: running the apps here under $server instead (Ctrl-C stops them)"
  [[ -x .venv/bin/python ]] || python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
  SERVER=$server FLASK_PORT=$flask_port FASTAPI_PORT=$fastapi_port HOST=${HOST:-$bind} exec ./up.sh
fi

server=${server:-unit}
image=flask-vs-fastapi:$server
for port in "$flask_port" "$fastapi_port"; do
  # A container of the same name is replaced below: its ports do not count.
  if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
    ! docker port "$name" 2>/dev/null | grep -q ":$port\$"; then
    die "port $port is already in use on this host (FLASK_PORT and FASTAPI_PORT choose others)"
  fi
done

build_args=()
[[ -z ${UNIT_IMAGE:-} ]] || build_args+=(--build-arg "UNIT_IMAGE=$UNIT_IMAGE")
[[ -z ${PYTHON_IMAGE:-} ]] || build_args+=(--build-arg "PYTHON_IMAGE=$PYTHON_IMAGE")
echo "start.sh: building $image"
if ! docker build --quiet --target "$server" "${build_args[@]}" -t "$image" . >/dev/null; then
  hint="--local serves the apps here without Docker"
  [[ $server == granian ]] || hint="--server granian builds on python:3.12-slim instead; $hint"
  die "building $image failed (see above): is its base image reachable? $hint"
fi

docker rm -f "$name" >/dev/null 2>&1 || true
run_args=(-d --name "$name" -p "$bind:$flask_port:8080" -p "$bind:$fastapi_port:8081")
# On SIGTERM both servers finish the requests in flight, and one may last 10 s
# (/io?ms=10000): up.sh allows them 15 s, more than docker stop's default grace.
run_args+=(--stop-timeout 20)
[[ -z $cpus ]] || run_args+=(--cpus "$cpus")
[[ -z $memory ]] || run_args+=(--memory "$memory")
for variable in METRICS_INTERVAL METRICS_SLOTS WORKERS THREADS; do
  [[ -z ${!variable:-} ]] || run_args+=(-e "$variable=${!variable}")
done
docker run "${run_args[@]}" "$image" >/dev/null || die "docker run failed (see the output above)"

for _ in {1..60}; do # up to 60 s until both apps answer
  if [[ $(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null) != true ]]; then
    docker logs --tail 30 "$name" >&2 || true
    die "the container stopped; its last log lines are above"
  fi
  if answers "$flask_port" && answers "$fastapi_port"; then
    cat <<EOF
start.sh: $server serves both apps in container $name
  Flask (WSGI):    http://127.0.0.1:$flask_port
  FastAPI (ASGI):  http://127.0.0.1:$fastapi_port
Next:
  curl http://127.0.0.1:$flask_port/stats
  curl http://127.0.0.1:$fastapi_port/stats
  wrk -t2 -c32 -d30s http://127.0.0.1:$flask_port/json; wrk -t2 -c32 -d30s http://127.0.0.1:$fastapi_port/json
  ./compare.sh --flask http://127.0.0.1:$flask_port --fastapi http://127.0.0.1:$fastapi_port
  ./start.sh --stop
EOF
    exit 0
  fi
  sleep 1
done
docker logs --tail 30 "$name" >&2 || true
die "the apps did not answer within 60 s; the container's last log lines are above"
