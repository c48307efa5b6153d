"""The work behind / /json /io /cpu, and the query and response models both apps share.

Both apps read their query strings alike (query_pairs) and validate them with the
same models, so a bad value gets the same 422 body from both; unknown parameters
are rejected, never ignored, on every route.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote_from_bytes

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ITEM_COUNT = 20
IO_MS = 10  # /io's wait when the query gives no ms
CPU_N = 10_000  # /cpu's size when the query gives no n
# The methods every route answers, as a 405's Allow lists them in both apps
# (HEAD is GET without the body).
ALLOW = "GET, HEAD"
# The routes that take no parameters: both apps check their query strings before
# routing, and only where there is one, so that an empty query costs nothing.
NO_QUERY_PATHS = frozenset({"/", "/status", "/json", "/db", "/fortunes"})
VISIBLE_ASCII = "".join(map(chr, range(0x21, 0x7F)))


def query_pairs(query_string: bytes) -> list[tuple[str, str]]:
    """The parameters of a raw query string as both apps read them: escaped and raw bytes
    alike decoded as UTF-8, each invalid byte as U+FFFD, `+` as a space."""
    # Escape the raw bytes first: parse_qsl would decode those as they are.
    escaped = quote_from_bytes(query_string, safe=VISIBLE_ASCII)
    return parse_qsl(escaped, keep_blank_values=True)


def query_values(pairs: list[tuple[str, str]], model: type[BaseModel]) -> dict[str, object]:
    """The parameters as both apps validate them with `model`: a known one repeated counts
    by its last value, as in Starlette; an unknown one repeated shows all its values."""
    values: dict[str, list[str]] = {}
    for key, value in pairs:
        values.setdefault(key, []).append(value)
    return {
        key: found[-1] if key in model.model_fields or len(found) == 1 else found
        for key, found in values.items()
    }


def unknown_parameters(query_string: bytes) -> list[dict]:
    """The 422 `detail` for the parameters of a route that takes none ([] for none)."""
    try:
        NoQuery.model_validate(query_values(query_pairs(query_string), NoQuery))
    except ValidationError as error:
        return query_errors(error)
    return []


def query_errors(error: ValidationError) -> list[dict]:
    """A query's validation errors as the `detail` of a 422, as FastAPI gives them."""
    return [{**err, "loc": ["query", *err["loc"]]} for err in error.errors(include_url=False)]


class Greeting(BaseModel):
    message: str
    framework: str
    framework_version: str
    interface: str
    python_version: str
    pid: int


class NoQuery(BaseModel):
    """The query of a route that takes no parameters: any parameter is refused."""

    model_config = ConfigDict(extra="forbid")


class Item(BaseModel):
    id: int
    name: str
    price: float
    tags: list[str]
    in_stock: bool


class ItemList(BaseModel):
    count: int
    items: list[Item]


class IoQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ms: int = Field(IO_MS, ge=0, le=10_000, description="milliseconds to wait")


class Waited(BaseModel):
    ms: int


class CpuQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: int = Field(CPU_N, ge=2, le=1_000_000, description="count the primes below n")


class Primes(BaseModel):
    n: int
    primes: int


def items() -> ItemList:
    """The answer of /json: a fresh list of ITEM_COUNT models, the same on every call."""
    return ItemList(
        count=ITEM_COUNT,
        items=[
            Item(
                id=i,
                name=f"item-{i}",
                price=round(1.5 * i + 0.99, 2),
                tags=["even" if i % 2 == 0 else "odd", f"group-{i % 4}"],
                in_stock=i % 3 != 0,
            )
            for i in range(ITEM_COUNT)
        ],
    )


def plain_items() -> dict:
    """items() as plain dicts and lists, built without pydantic: the plain baselines' /json.

    The values are written out again rather than shared with items(): taking them from
    one generator would cost items() 15,000 instructions more per call, a change in what
    the typed apps are measured doing. tests/test_workloads.py holds the two equal.
    """
    return {
        "count": ITEM_COUNT,
        "items": [
            {
                "id": i,
                "name": f"item-{i}",
                "price": round(1.5 * i + 0.99, 2),
                "tags": ["even" if i % 2 == 0 else "odd", f"group-{i % 4}"],
                "in_stock": i % 3 != 0,
            }
            for i in range(ITEM_COUNT)
        ],
    }


def count_primes(n: int) -> int:
    """The number of primes below n, by a sieve in plain Python: deterministic CPU work."""
    sieve = [True] * n
    sieve[0:2] = [False, False]
    for i in range(2, int(n**0.5) + 1):
        if sieve[i]:
            for multiple in range(i * i, n, i):
                sieve[multiple] = False
    return sum(sieve)
