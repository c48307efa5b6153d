#!/usr/bin/env bash
# Runs both apps: Flask on http://127.0.0.1:8080 and FastAPI on http://127.0.0.1:8081.
#
#   ./start.sh                    # one container, NGINX Unit serving both apps
#   ./start.sh --server granian   # the same container with granian instead
#   ./start.sh --cpus 1 --memory 512m --cpuset 1
#   ./start.sh --stop             # stop and remove the container
#
# With Docker it builds the image from the server's own dockerfile (Dockerfile on
# UNIT_IMAGE, granian.dockerfile on PYTHON_IMAGE), replaces a container of the
# same name, publishes both ports on 127.0.0.1, waits until both apps serve and
# says what to do next. Where Docker is not installed or its daemon is not
# reachable, it says so and runs ./up.sh here instead, in the foreground, from
# VENV (.venv, made and filled here); --local does that even with Docker.
#
# Options:
#   --server unit|granian   the server (default: unit; run here, ./up.sh chooses)
#   --cpus N                the container's CPU limit in cores, e.g. 1 or 1.5
#   --memory SIZE           the container's memory limit, e.g. 512m
#   --cpuset CPUS           the cores the container may use, e.g. 1 or 0-1 (a load
#                           tool on the other cores then does not compete with it)
#   --public                publish the ports on every address, not only 127.0.0.1
#   --name NAME             the container's name (flask-vs-fastapi)
#   --local                 skip Docker: serve the apps here
#   --stop                  stop and remove the container
#   -h, --help              this help
# The limits apply to both apps alike: they share the container.
#
# Environment: FLASK_PORT and FASTAPI_PORT (the host's ports); METRICS_INTERVAL,
# METRICS_SLOTS, WORKERS, THREADS, DATABASE, DATABASE_URL and DATABASE_POOL_SIZE
# (passed into the container, whose PostgreSQL up.sh starts unless DATABASE_URL names
# another or DATABASE=none); the base images, by default the dockerfiles' own:
#   UNIT_IMAGE     {UNIT_IMAGE}
#   PYTHON_IMAGE   {PYTHON_IMAGE}
# Run here, every setting of ./up.sh applies. ./up.sh --help says what each setting
# takes and its default; start.sh checks them by the same rules (serve/config.py, with
# this machine's python3) before it builds or starts anything.
#
# Exit codes: 0 serving (or stopped); 1 a failure, said in one line; 2 a bad flag or
# setting.
set -euo pipefail
# A relative VENV is the caller's, as any path given on the command line would be.
[[ -z ${VENV:-} || $VENV == /* ]] || VENV=$PWD/$VENV
cd "$(dirname "$0")"

die() {
  echo "start.sh: $*" >&2
  exit 1
}
bad_usage() {
  echo "start.sh: $* (--help lists the options)" >&2
  exit 2
}
base_default() { # UNIT_IMAGE or PYTHON_IMAGE: the base image its dockerfile names
  local dockerfile=Dockerfile
  [[ $1 == UNIT_IMAGE ]] || dockerfile=granian.dockerfile
  sed -n "s/^ARG $1=//p" "$dockerfile"
}
usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' |
    sed "s|{UNIT_IMAGE}|$(base_default UNIT_IMAGE)|; s|{PYTHON_IMAGE}|$(base_default PYTHON_IMAGE)|"
  exit 0
}

server="" cpus="" memory="" cpuset="" bind=127.0.0.1 name=flask-vs-fastapi local=0 stop=0
while (($#)); do
  flag=$1
  value_given=0
  if [[ $flag == --*=* ]]; then # --server=granian, as well as --server granian
    set -- "${flag%%=*}" "${flag#*=}" "${@:2}"
    flag=$1
    value_given=1
  fi
  case $flag in
    --server | --cpus | --memory | --cpuset | --name)
      if ((!value_given)) && [[ $# -lt 2 || $2 == -* ]]; then
        bad_usage "$flag needs a value"
      fi
      printf -v "${flag#--}" '%s' "$2"
      shift
      ;;
    --public | --local | --stop)
      ((!value_given)) || bad_usage "$flag takes no value"
      case $flag in
        --public) bind=0.0.0.0 ;;
        --local) local=1 ;;
        --stop) stop=1 ;;
      esac
      ;;
    -h | --help) usage ;;
    *) bad_usage "unknown option '$flag'" ;;
  esac
  shift
done
[[ -z $server || $server == unit || $server == granian ]] ||
  bad_usage "--server must be unit or granian, not '$server'"
[[ -z $cpus || $cpus =~ ^[0-9]+(\.[0-9]+)?$ ]] ||
  bad_usage "--cpus takes a number of cores such as 1 or 1.5, not '$cpus'"
[[ -z $cpus || $cpus =~ [1-9] ]] || bad_usage "--cpus must be more than 0"
[[ -z $memory || $memory =~ ^[0-9]+[bkmgBKMG]?$ ]] ||
  bad_usage "--memory takes a size such as 512m, not '$memory'"
if [[ -n $cpuset ]]; then
  [[ $cpuset =~ ^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]] ||
    bad_usage "--cpuset takes cores such as 1, 0-1 or 0,2, not '$cpuset'"
  cores=$(getconf _NPROCESSORS_ONLN)
  for core in $(tr ',-' '  ' <<<"$cpuset"); do
    ((10#$core < cores)) || bad_usage "--cpuset $cpuset: this machine has cores 0-$((cores - 1))"
  done
fi
[[ $name =~ ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$ ]] || bad_usage "--name '$name' is not a container name"

port_taken() { # PORT: something on this host holds it, on the address we publish on or any
  if command -v python3 >/dev/null; then
    if python3 -m serve.ports "$bind" "$1" 2>/dev/null; then return 1; fi
  else
    (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

serving() { # both apps serve on the published ports (serve/readiness.py; without python3
  # here, the container's HEALTHCHECK, which asks the same inside)
  if command -v python3 >/dev/null; then
    python3 -m serve.readiness 127.0.0.1 "$flask_port" "$fastapi_port" 2>/dev/null
  else
    [[ $(docker inspect -f '{{.State.Health.Status}}' "$name" 2>/dev/null) == healthy ]]
  fi
}

docker_reachable() {
  command -v docker >/dev/null || { echo "start.sh: Docker is not installed" >&2; return 1; }
  docker info >/dev/null 2>&1 || { echo "start.sh: the Docker daemon is not reachable" >&2; return 1; }
}

if ((stop)); then
  docker_reachable || exit 1
  if ! docker container inspect "$name" >/dev/null 2>&1; then
    echo "start.sh: no container $name"
    exit 0
  fi
  docker stop "$name" >/dev/null
  docker rm "$name" >/dev/null
  echo "start.sh: stopped and removed container $name"
  exit 0
fi

# Every setting that goes into the container (or to ./up.sh here), checked by serving's
# own rules before anything is built or started. Without python3 here, up.sh checks them
# where it runs.
if command -v python3 >/dev/null; then
  refusal=$(python3 -m serve.config --check FLASK_PORT FASTAPI_PORT WORKERS THREADS \
    METRICS_INTERVAL METRICS_SLOTS DATABASE DATABASE_URL DATABASE_POOL_SIZE 2>&1) &&
    code=0 || code=$?
  if ((code == 2)); then
    echo "start.sh: $refusal (./up.sh --help says what each setting takes)" >&2
    exit 2
  fi
fi
flask_port=${FLASK_PORT-8080}
fastapi_port=${FASTAPI_PORT-8081}

instead=""
if ((!local)) && ! docker_reachable; then
  local=1 instead=" instead"
fi
if ((local)); then
  [[ -z $cpus && -z $memory && -z $cpuset ]] || die "--cpus, --memory and --cpuset need Docker"
  echo "start.sh: running the apps here${server:+ under $server}$instead (Ctrl-C stops them)"
  venv=${VENV-$PWD/.venv}
  if [[ -n $venv ]]; then # an empty VENV is refused by up.sh
    [[ -x $venv/bin/python ]] || python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt
  fi
  [[ -z $server ]] || export SERVER=$server
  FLASK_PORT=$flask_port FASTAPI_PORT=$fastapi_port HOST=${HOST-$bind} VENV=$venv exec ./up.sh
fi

server=${server:-unit}
image=flask-vs-fastapi:$server
if [[ $server == unit ]]; then
  dockerfile=Dockerfile base_variable=UNIT_IMAGE base=${UNIT_IMAGE:-$(base_default UNIT_IMAGE)}
  other="--server granian builds on $(base_default PYTHON_IMAGE) instead"
else
  dockerfile=granian.dockerfile base_variable=PYTHON_IMAGE
  base=${PYTHON_IMAGE:-$(base_default PYTHON_IMAGE)}
  other="the default server, unit, builds on $(base_default UNIT_IMAGE) instead"
fi

for port in "$flask_port" "$fastapi_port"; do
  # A container of the same name is replaced below: its ports do not count.
  if port_taken "$port" && ! docker port "$name" 2>/dev/null | grep -q ":$port\$"; then
    die "port $port is already in use on this host (FLASK_PORT and FASTAPI_PORT choose others)"
  fi
done

# The base image, here or pulled, before the build: so that a failure names it.
if ! docker image inspect "$base" >/dev/null 2>&1; then
  echo "start.sh: pulling the base image $base"
  if ! reason=$(docker pull --quiet "$base" 2>&1 >/dev/null); then
    echo "start.sh: ${reason##*$'\n'}" >&2
    die "cannot get the base image $base: it is not on this machine and the pull failed." \
      "Provide it with 'docker load -i FILE' (a 'docker save $base' from another machine)," \
      "or name one you have: $base_variable=IMAGE ./start.sh; or $other, or --local serves the apps here"
  fi
fi

build_log=$(mktemp "${TMPDIR:-/tmp}/flask-vs-fastapi-build.XXXXXX")
trap 'rm -f "$build_log"' EXIT
builder="BuildKit"
if ! docker buildx version >/dev/null 2>&1; then
  # Without buildx Docker builds with its classic builder, and warns about that on
  # every build: say it once here instead, and keep its log for a failure.
  builder="Docker's classic builder (buildx is not installed)"
  export DOCKER_BUILDKIT=0
fi
old_image=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
echo "start.sh: building $image from $dockerfile on $base with $builder"
if ! docker build --force-rm --build-arg "$base_variable=$base" -f "$dockerfile" \
  -t "$image" . >"$build_log" 2>&1; then
  tail -n 30 "$build_log" >&2
  # What the failed steps left: untagged layers of this project only.
  docker image prune --force --filter "label=org.opencontainers.image.title=flask-vs-fastapi" \
    >/dev/null 2>&1 || true
  die "building $image failed; the build's last lines are above"
fi

remove_container() { docker rm -f "$name" >/dev/null 2>&1 || true; }
remove_container
new_image=$(docker image inspect -f '{{.Id}}' "$image")
if [[ -n $old_image && $old_image != "$new_image" ]]; then
  # The image this build replaced would be left untagged: remove it (unless a
  # container of another name still runs it).
  docker image rm "$old_image" >/dev/null 2>&1 || true
fi

run_args=(-d --name "$name" -p "$bind:$flask_port:8080" -p "$bind:$fastapi_port:8081")
# On SIGTERM both servers finish the requests in flight, and one may last 10 s
# (/io?ms=10000): up.sh allows them 15 s, more than docker stop's default grace.
run_args+=(--stop-timeout 20)
[[ -z $cpus ]] || run_args+=(--cpus "$cpus")
[[ -z $memory ]] || run_args+=(--memory "$memory")
[[ -z $cpuset ]] || run_args+=(--cpuset-cpus "$cpuset")
for variable in METRICS_INTERVAL METRICS_SLOTS WORKERS THREADS DATABASE DATABASE_URL \
  DATABASE_POOL_SIZE; do
  [[ ! -v $variable ]] || run_args+=(-e "$variable=${!variable}")
done
# From here on, every way out that is not success removes the container.
trap 'remove_container; exit 130' INT TERM HUP
if ! reason=$(docker run "${run_args[@]}" "$image" 2>&1 >/dev/null); then
  remove_container # docker run creates the container before it fails to start it
  die "docker run failed: ${reason##*$'\n'}"
fi

give_up() { # MESSAGE: with the container's last log lines, and without the container
  docker logs --tail 30 "$name" >&2 || true
  remove_container
  die "$1"
}
for _ in {1..60}; do # up to 60 s until both apps serve
  if [[ $(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null) != true ]]; then
    give_up "the container stopped; its last log lines are above"
  fi
  if serving; then
    stop_args=""
    [[ $name == flask-vs-fastapi ]] || stop_args=" --name $name"
    cat <<EOF
start.sh: $server serves both apps in container $name
  Flask (WSGI):    http://127.0.0.1:$flask_port
  FastAPI (ASGI):  http://127.0.0.1:$fastapi_port
Next:
  curl http://127.0.0.1:$flask_port/stats
  curl http://127.0.0.1:$fastapi_port/stats
  curl http://127.0.0.1:$flask_port/db; curl http://127.0.0.1:$fastapi_port/db
  wrk -t2 -c32 -d30s http://127.0.0.1:$flask_port/json; wrk -t2 -c32 -d30s http://127.0.0.1:$fastapi_port/json
  ./compare.sh --flask http://127.0.0.1:$flask_port --fastapi http://127.0.0.1:$fastapi_port
  ./start.sh --stop$stop_args
EOF
    exit 0
  fi
  sleep 1
done
give_up "the apps did not serve within 60 s; the container's last log lines are above"
