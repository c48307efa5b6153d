"""FastAPI's typed baseline (baselines/fastapi-typed.py) as ./compare.sh --style typed serves it."""

from baselines.observed import observed

app = observed("fastapi_typed")
