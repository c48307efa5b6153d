#!/usr/bin/env bash
# Sets up .venv with the pinned test requirements and runs the whole test suite.
# Extra arguments go to pytest:  ./test.sh -k parity
set -euo pipefail
cd "$(dirname "$0")"

# The comparison's tests drive wrk, a Debian package: install it where we may,
# else those tests skip and say why.
if ! command -v wrk >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi

[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
.venv/bin/python -m ruff check .
.venv/bin/python -m ruff format --check .
.venv/bin/shellcheck ./*.sh .ci/run
exec .venv/bin/python -m pytest "$@"
