"""Numbers as table text: '0.034', '0.034 [0.027, 0.041]', '-24%', '3.2e-05'; '-' for missing.

The report's tables hold these strings; the numbers room writes a few itself (the known answers
beside the nets, the best of each family), the pages the rest (``analysis.pages._render`` passes them on).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np


def num(v: Any, digits: int = 3) -> str:
    """A number for a table cell; '-' for missing, 'inf' for infinite."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "-" if v is None else str(v)
    if math.isnan(f):
        return "-"
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    return f"{f:.{digits}f}"


def count(v: Any) -> str:
    """An integer count; '-' for missing, 'inf' for infinite."""
    return num(v, 0)


def ci(mean: Any, low: Any, high: Any, digits: int = 3) -> str:
    """'0.034 [0.027, 0.041]'."""
    return f"{num(mean, digits)} [{num(low, digits)}, {num(high, digits)}]"


def percent(x: Any) -> str:
    """'-24%' (a signed change); '-' for missing."""
    try:
        f = float(x)
    except (TypeError, ValueError):
        return "-"
    return "-" if not math.isfinite(f) else f"{100 * f:+.0f}%"


def pvalue(p: Any) -> str:
    """A p-value: two significant digits, scientific below 1e-4; '-' for missing."""
    if p is None or (isinstance(p, (float, np.floating)) and math.isnan(p)):
        return "-"
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"
