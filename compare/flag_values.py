"""The values of compare.sh's flags, read from their text: each reader returns the value or
says in one line what the flag takes (argparse names the flag), and the Parser that says
it, for the runner and the benchmarks alike."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from compare.exits import EXIT_BAD_FLAGS
from compare.plan import SCENARIOS
from serve.settings import ConfigError, Number


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """One line naming the flag, and exit 2, as every script of this project does."""
        self.exit(EXIT_BAD_FLAGS, f"{self.prog}: {message} (--help lists every option)\n")


def whole_number(low: int) -> Callable[[str], int]:
    """A reader of whole numbers of `low` or more."""

    def read(text: str) -> int:
        if not re.fullmatch(r"[0-9]+", text) or int(text) < low:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of {low} or more")
        return int(text)

    return read


positive_int = whole_number(1)


def setting_value(setting: Number) -> Callable[[str], int | float]:
    """A reader of a flag that sets one of serving's settings (WORKERS, THREADS...): its
    range, refused in serving's words."""

    def read(text: str) -> int | float:
        try:
            return setting.read(text)
        except ConfigError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return read


def query_value(model: type[BaseModel], name: str) -> Callable[[str], object]:
    """A reader of a value that `model` takes for its query parameter `name` (/io?ms=)."""

    def read(text: str) -> object:
        try:
            return getattr(model.model_validate({name: text}), name)
        except ValidationError as error:
            raise argparse.ArgumentTypeError(f"{text!r}: {error.errors()[0]['msg']}") from None

    return read


def checked_float(text: str, valid, says: str) -> float:
    """text as a float for which valid(value) holds, else an error that says what it takes."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not valid(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not {says}")
    return value


def app_url(text: str) -> str:
    """An app's address: http:// (or https://), a host, and a port if any."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (a port out of range or not a number raises here)
    except ValueError:
        parts = None
    if not parts or parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an app's URL: http://HOST:PORT, for example http://127.0.0.1:8080"
        )
    return text


def positive_float(text: str) -> float:
    return checked_float(text, lambda value: 0 < value < math.inf, "a finite number above 0")


def distinct(values: list, text: str) -> list:
    """`values`, read from `text`, unless one of them is there twice."""
    if len(values) != len(set(values)):
        raise argparse.ArgumentTypeError(f"{text!r} repeats a level")
    return values


def int_list(text: str) -> list[int]:
    return distinct([positive_int(part) for part in text.split(",")], text)


def float_list(text: str) -> list[float]:
    return distinct([positive_float(part) for part in text.split(",")], text)


def fraction_list(text: str) -> list[float]:
    says = "a share above 0 and at most 1 (idle is always run)"
    return distinct(
        [checked_float(part, lambda v: 0 < v <= 1, says) for part in text.split(",")], text
    )


def seed(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,10}", text) or int(text) >= 2**32:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 0 to 2**32-1")
    return int(text)


def scenario_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",")]
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        raise argparse.ArgumentTypeError(f"{','.join(unknown)!r} not of {','.join(SCENARIOS)}")
    return distinct(names, text)


def fraction(text: str) -> float:
    return checked_float(text, lambda value: 0 <= value <= 1, "a share from 0 to 1")
