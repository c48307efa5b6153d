"""The sampler's ring buffer: the newest samples, each kept as its JSON and its figures."""

from __future__ import annotations

import itertools
import math
from array import array
from collections import deque
from typing import Any

from metrics.schema import Snapshot
from metrics.summary import FigurePath, figures, summarize_columns

Row = tuple[bytes, tuple[FigurePath, ...], array]  # a sample's JSON, its figures' paths and values


class RingBuffer:
    """The newest `slots` samples, each kept as its JSON and its figures only: a
    fraction of a Snapshot's memory, and /stats needs no serialising."""

    def __init__(self, slots: int):
        self._rows: deque[Row] = deque(maxlen=slots)
        # The figures' paths, one tuple shared by every sample that has them: they
        # change only where a block is null in some samples and not in others.
        self._layouts: dict[tuple[FigurePath, ...], tuple[FigurePath, ...]] = {}
        # The paths of integer figures: their min and max stay integers.
        self._integers: frozenset[FigurePath] = frozenset()

    def append(self, snapshot: Snapshot) -> None:
        found = figures(snapshot.model_dump())
        layout = self._layouts.setdefault(tuple(found), tuple(found))
        integers = {path for path, value in found.items() if isinstance(value, int)}
        if not integers <= self._integers:
            self._integers |= integers
        values = array("d", [math.nan if v is None else v for v in found.values()])
        self._rows.append((snapshot.model_dump_json().encode(), layout, values))

    def clear(self) -> None:
        self._rows.clear()

    def __len__(self) -> int:
        return len(self._rows)

    def newest(self, last: int | None = None) -> list[Row]:
        """The newest `last` rows (all by default), oldest first; the caller holds a lock."""
        rows = list(self._rows)
        return rows[-last:] if last else rows

    def summary(self, rows: list[Row]) -> dict[str, Any] | None:
        """summarize() of `rows` (from newest()), None for no rows."""
        if not rows:
            return None
        columns: dict[FigurePath, list[float]] = {}
        for layout, group in itertools.groupby(rows, key=lambda row: row[1]):
            for path, column in zip(
                layout, zip(*(row[2] for row in group), strict=True), strict=True
            ):
                # NaN stands for null, and is the one value not equal to itself.
                columns.setdefault(path, []).extend([v for v in column if v == v])
        return summarize_columns(columns, self._integers)
