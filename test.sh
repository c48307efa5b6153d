#!/usr/bin/env bash
# Sets up .venv with the pinned test requirements, then runs ruff, shellcheck and
# the whole test suite. Other arguments go to pytest:
#
#   ./test.sh                  # everything (tests that need unitd or Docker skip without)
#   ./test.sh -k killed_worker # a subset, by name
#   ./test.sh -m container     # the container tests only
#
# pytest's own options: .venv/bin/python -m pytest --help. Environment:
# UNITD=/path/to/unitd runs the Unit tests, with VENV=a virtualenv made by the Python
# that Unit's Python module links; REQUIRE_CONTAINER_TESTS=1 turns a container test's
# skip (no Docker engine, no base image) into a failure.
#
# Exit codes: pytest's own (0 passed, 1 a test failed, 2 interrupted, ...), and 2 also
# for an argument that pytest refuses, said in one line before anything runs.
set -euo pipefail
cd "$(dirname "$0")"

case ${1:-} in
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
esac

# The comparison's tests drive wrk, a Debian package: install it where we may,
# else those tests skip and say why.
if ! command -v wrk >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi

[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-test.txt

# pytest's parser checks the arguments now, not after the checks below: it
# collects nothing here (--ignore-glob), so this takes a moment.
refused=$(.venv/bin/python -m pytest "$@" --collect-only -q -p no:cacheprovider \
  --ignore-glob='*' 2>&1 >/dev/null) && code=0 || code=$?
if ((code == 4)); then # pytest's usage error: "...: error: REASON", or "ERROR: REASON"
  reason=$(grep -m 1 -o 'error: .*' <<<"$refused" || grep -m 1 '^ERROR: ' <<<"$refused" || true)
  echo "test.sh: ${reason#*: } (--help for more)" >&2
  exit 2
fi

.venv/bin/python -m ruff check .
.venv/bin/python -m ruff format --check .
.venv/bin/shellcheck ./*.sh .ci/run
exec .venv/bin/python -m pytest "$@"
