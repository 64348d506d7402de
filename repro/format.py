"""One way to write a measured value, used by the CLI, the site and card quotes alike."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# Units that describe a statistic ("max |…|", "mean …") read as a caption, not a suffix.
_CAPTION_UNITS = ("max", "mean", "min", "share", "ratio", "log")


def fmt_number(x: Any, spec: str | None = None) -> str:
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return format(x, spec) if spec else str(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            return str(x)
        if spec:
            return format(x, spec)
        if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e6):
            return f"{x:.2e}"
        return f"{x:.4g}"
    if isinstance(x, str) and x in ("nan", "inf", "-inf"):
        return x
    return str(x)


def fmt_value(v: Any, unit: str = "", spec: str | None = None, limit: int = 6) -> str:
    """A metric value: a number, a per-seed list, a dict of arms, with its unit when short."""
    if v is None:
        return "—"
    if isinstance(v, list | tuple):
        s = ", ".join(fmt_number(x, spec) for x in v[:limit]) + (" …" if len(v) > limit else "")
    elif isinstance(v, Mapping):
        items = list(v.items())
        s = ", ".join(f"{k}: {fmt_value(x, spec=spec)}" for k, x in items[:limit])
        s += " …" if len(items) > limit else ""
    else:
        s = fmt_number(v, spec)
    if unit and not unit.startswith(_CAPTION_UNITS) and len(unit) <= 12:
        return f"{s} {unit}"
    return s


def fmt_interval(row: Mapping[str, Any], spec: str | None = None) -> str:
    """'[0.12, 0.31]' from a claim row, or '' when it has none."""
    iv = row.get("interval")
    if not iv or len(iv) != 2 or any(not isinstance(x, int | float) for x in iv):
        return ""
    return f"[{fmt_number(float(iv[0]), spec)}, {fmt_number(float(iv[1]), spec)}]"


def fmt_measured(row: Mapping[str, Any], spec: str | None = None, with_unit: bool = True) -> str:
    """A claim row's measurement: 'estimate (95% CI [lo, hi], n = 5)' for a finding with an
    interval, 'estimate (n = 1)' for a single seed, the plain value for a check."""
    value = row.get("measured")
    unit = (row.get("unit") or "") if with_unit else ""
    if value is None:
        return "—"
    if row.get("kind") != "finding" or "n" not in row:
        return fmt_value(value, unit, spec)
    s = fmt_value(value, unit, spec)
    iv = fmt_interval(row, spec)
    n = row.get("n")
    level = row.get("level") or 0.95
    if iv:
        extra = f", n = {n}" if n else ""
        return f"{s} ({level:.0%} CI {iv}{extra})"
    return f"{s} (n = {n})"
