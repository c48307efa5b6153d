#!/usr/bin/env bash
# Sets up .venv for the comparison and runs the comparison (python -m compare) with these arguments.
#
#   ./compare.sh --launch          # start both apps here and write a full report
#   ./compare.sh --help            # every option
#
# The load tool is a Debian package: apt-get install wrk (or apache2-utils, hey).
set -euo pipefail
cd "$(dirname "$0")"

[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
  -r requirements.txt -r requirements-compare.txt
exec .venv/bin/python -m compare "$@"
