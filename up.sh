#!/usr/bin/env bash
# Serves both apps under NGINX Unit or granian: it runs the package serve/ (python -m
# serve) from the virtualenv VENV (.venv). ./up.sh --help lists its settings, all from
# the environment, and its exit codes.
set -euo pipefail
# A relative VENV is the caller's, as any path given on the command line would be.
[[ -z ${VENV-} || $VENV == /* ]] || VENV=$PWD/$VENV
cd "$(dirname "$0")"
python=${VENV-.venv}/bin/python
# Without that virtualenv, python3 runs serve/'s checks (the standard library is enough),
# and they say what is missing.
[[ -x $python ]] || python=python3
exec "$python" -m serve "$@"
