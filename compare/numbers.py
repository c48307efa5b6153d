"""Numbers written for people: 10,190 [9,935-10,540] (with an en dash), 0.112, 12%, never
1.019e+04. Every figure the report, the table and the charts print goes through here."""

from __future__ import annotations

import math

DASH = "\u2013"  # the en dash of a range: 9,935-10,540
SIGNIFICANT = 3  # figures kept of a number under 1,000


def number(value: float | None) -> str:
    """A figure with thousands separators from 1,000 up, else three significant figures,
    in plain decimals: 10,190; 35.3; 0.112; 0.000413; "-" for none."""
    if value is None or not math.isfinite(value):
        return "-"
    size = abs(value)
    if size >= 999.5:
        return f"{value:,.0f}"
    if size == 0:
        return "0"
    decimals = max(0, SIGNIFICANT - 1 - math.floor(math.log10(size)))
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def interval(value: float | None, low: float | None, high: float | None) -> str:
    """10,190 [9,935-10,540]; the value alone where there is no interval."""
    if low is None or high is None:
        return number(value)
    return f"{number(value)} [{number(low)}{DASH}{number(high)}]"


def percent(share: float) -> str:
    """A share's size in percent, two figures under 10 down to a hundredth: 12, 4.5, 0.35,
    0.01; "<0.01" below that (an interval's end next to no change)."""
    size = abs(share) * 100
    if size >= 9.95 or size == 0:
        return f"{size:,.0f}"
    if size < 0.005:
        return "<0.01"
    decimals = min(2, max(1, 1 - math.floor(math.log10(size))))
    return f"{size:.{decimals}f}"


def change(ratio: float) -> str:
    """A ratio as a signed change in percent: -3%, +8%."""
    return f"{'+' if ratio >= 1 else '-'}{percent(ratio - 1)}%"
