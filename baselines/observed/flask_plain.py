"""Flask's plain baseline (baselines/flask-plain.py) as ./compare.sh --style plain serves it."""

from baselines.observed import observed

app = observed("flask_plain")
