"""The sampler's settings, METRICS_INTERVAL and METRICS_SLOTS, read and validated once."""

from __future__ import annotations

import os
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

# The largest METRICS_SLOTS: a full buffer must stay well under 50 MiB per worker,
# with room for larger samples, and /stats of it under 200 ms on a busy machine
# (benchmarks/stats_cost.py measures both). 100000 met neither.
MAX_SLOTS = 20_000


class ConfigError(RuntimeError):
    """A metrics setting in the environment is invalid; start-up must stop."""


def plain_decimal(pattern: str, what: str) -> BeforeValidator:
    """Refuse a setting's text unless it matches `pattern`, saying it should be `what`.

    pydantic alone accepts '1_000', ' 5', '1e1' and, for an integer, '1.0': a typo
    there would start the apps with a value nobody meant.
    """
    regex = re.compile(pattern)

    def check(value: Any) -> Any:
        if isinstance(value, str) and not regex.fullmatch(value):
            raise PydanticCustomError("plain_decimal", "Input should be {what}", {"what": what})
        return value

    return BeforeValidator(check)


class MetricsConfig(BaseModel):
    """The sampler's settings, read and validated once from the environment."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False, extra="ignore")

    interval_s: Annotated[
        float, plain_decimal(r"-?[0-9]+(\.[0-9]+)?", "a plain decimal number such as 10 or 0.5")
    ] = Field(10.0, ge=0.1, le=3600, validation_alias="METRICS_INTERVAL")
    slots: Annotated[int, plain_decimal(r"-?[0-9]+", "a plain decimal integer such as 60")] = Field(
        60, ge=1, le=MAX_SLOTS, validation_alias="METRICS_SLOTS"
    )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> MetricsConfig:
        environ = dict(os.environ if environ is None else environ)
        try:
            return cls.model_validate(environ)
        except ValidationError as error:
            problems = "; ".join(
                f"{err['loc'][0]}={err['input']!r}: {err['msg']}" for err in error.errors()
            )
            raise ConfigError(f"invalid metrics setting: {problems}") from None
