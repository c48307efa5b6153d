"""Flask's typed baseline (baselines/flask-typed.py) as ./compare.sh --style typed serves it."""

from baselines.observed import observed

app = observed("flask_typed")
