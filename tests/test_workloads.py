"""The shared workloads: deterministic results that both apps serve."""

import pytest
from pydantic import ValidationError

import workloads


@pytest.mark.parametrize(
    ("n", "primes"), [(2, 0), (3, 1), (10, 4), (100, 25), (10_000, 1229), (1_000_000, 78498)]
)
def test_count_primes_counts_primes_below_n(n, primes):
    assert workloads.count_primes(n) == primes


def test_items_are_fresh_but_always_the_same():
    first, second = workloads.items(), workloads.items()
    assert first is not second
    assert first == second
    assert first.count == len(first.items) == workloads.ITEM_COUNT
    assert first.items[3].model_dump() == {
        "id": 3,
        "name": "item-3",
        "price": 5.49,
        "tags": ["odd", "group-3"],
        "in_stock": False,
    }


def test_plain_items_are_the_items_without_models():
    plain = workloads.plain_items()
    assert plain == workloads.items().model_dump()
    assert plain is not workloads.plain_items()  # fresh on every call, as items()
    assert list(plain["items"][0]) == list(workloads.Item.model_fields)  # in the same order


@pytest.mark.parametrize(
    ("model", "query"),
    [
        (workloads.IoQuery, {"ms": "-1"}),
        (workloads.IoQuery, {"ms": "10001"}),
        (workloads.IoQuery, {"delay": "1"}),
        (workloads.CpuQuery, {"n": "1"}),
        (workloads.CpuQuery, {"n": "1000001"}),
        (workloads.NoQuery, {"x": "1"}),
        (workloads.NoQuery, {"": ""}),
    ],
)
def test_query_models_bound_every_parameter(model, query):
    with pytest.raises(ValidationError):
        model.model_validate(query)


@pytest.mark.parametrize(
    ("query_string", "pairs"),
    [
        (b"", []),
        (b"ms=5&ms=6", [("ms", "5"), ("ms", "6")]),
        (b"x&=1&y=", [("x", ""), ("", "1"), ("y", "")]),
        (b"a+b=%2B", [("a b", "+")]),
        ("n=\u00e9".encode(), [("n", "\u00e9")]),  # raw UTF-8
        (b"n=%C3%A9", [("n", "\u00e9")]),  # the same, escaped
        (b"n=\xff", [("n", "\ufffd")]),  # raw, not UTF-8
        (b"%FF=%ff", [("\ufffd", "\ufffd")]),  # escaped, not UTF-8
        (b"n=\xc3", [("n", "\ufffd")]),  # a UTF-8 sequence cut short
    ],
)
def test_query_pairs_decode_raw_and_escaped_bytes_alike(query_string, pairs):
    assert workloads.query_pairs(query_string) == pairs
