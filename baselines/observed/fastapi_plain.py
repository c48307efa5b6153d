"""FastAPI's plain baseline (baselines/fastapi-plain.py) as ./compare.sh --style plain serves it."""

from baselines.observed import observed

app = observed("fastapi_plain")
