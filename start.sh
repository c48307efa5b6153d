#!/usr/bin/env bash
# Runs both apps on this machine: sets up .venv from requirements.txt, then
# starts ./up.sh (granian), Flask on http://127.0.0.1:8080 and FastAPI on
# http://127.0.0.1:8081. Settings are up.sh's (HOST, FLASK_PORT, FASTAPI_PORT,
# WORKERS, METRICS_INTERVAL, METRICS_SLOTS). Ctrl-C stops both.
#
#   ./start.sh
#   curl http://127.0.0.1:8080/stats
set -euo pipefail
cd "$(dirname "$0")"

[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
exec ./up.sh
