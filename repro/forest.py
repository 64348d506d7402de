"""A small forest plot for a card, drawn as inline SVG at build time (no JavaScript, no library).

One row per finding that has a confidence interval. Findings measure different quantities, so
each row has its own horizontal scale: the interval (a line with end caps) and the estimate (a
dot coloured by the verdict) against the region the rule accepts (shaded), whose edges are the
thresholds taken from the paper; a rule with a target value (``≈ x``) also marks that value as
the paper's (a diamond). Numbers at the thresholds and interval ends say where each row is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from repro.format import fmt_number
from repro.graph.draw import _esc, _f  # the drawings' escaping and coordinate format

WIDTH = 640.0
LABEL_W = 170.0  # left column: the claim's id
PLOT_L, PLOT_R = LABEL_W + 10.0, WIDTH - 40.0
ROW_H = 46.0
TOP = 14.0

COLOUR = {
    "reproduced": "#1b7f3b",
    "not reproduced": "#b3261e",
    "inconclusive": "#8a6d00",
    "not checked at this scale": "#5f6b73",
}


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def accepted(rule: Any) -> tuple[float | None, float | None, float | None] | None:
    """(low, high, paper value) of the region a rule accepts; None for a rule with no region
    on a number line (a boolean rule). An open side is None."""
    from repro.claims import AtLeast, AtMost, Between, Equivalent, Near

    if isinstance(rule, AtLeast):
        return rule.limit, None, None
    if isinstance(rule, AtMost):
        return None, rule.limit, None
    if isinstance(rule, Between):
        return rule.low, rule.high, None
    if isinstance(rule, Near):
        return rule.target - rule.tol, rule.target + rule.tol, rule.target
    if isinstance(rule, Equivalent):
        return rule.center - rule.margin, rule.center + rule.margin, rule.center
    return None


def plottable(row: Mapping[str, Any]) -> bool:
    iv = row.get("interval")
    return (
        row.get("kind") == "finding"
        and isinstance(iv, list | tuple)
        and len(iv) == 2
        and all(_finite(x) for x in iv)
        and _finite(row.get("measured"))
    )


def forest_svg(rows: list[Mapping[str, Any]], rules: Mapping[str, Any]) -> str:
    """The plot for a result's claim rows; ``rules`` maps claim id -> Rule (the declaration's,
    used only where its description equals the rule stored with the result). '' if no row has
    an interval."""
    rows = [r for r in rows if plottable(r)]
    if not rows:
        return ""
    height = TOP + ROW_H * len(rows) + 4
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="forest" viewBox="0 0 {_f(WIDTH)} '
        f'{_f(height)}" width="{_f(WIDTH)}" height="{_f(height)}" role="img" '
        f'font-family="sans-serif" font-size="11" aria-label="Forest plot: each finding\'s '
        f'95% interval against the region its rule accepts">'
    ]
    for i, r in enumerate(rows):
        y = TOP + ROW_H * i + 12
        lo, hi = (float(x) for x in r["interval"])
        est = float(r["measured"])
        rule = rules.get(r.get("id"))
        region = accepted(rule) if rule is not None and rule.describe() == r.get("rule") else None
        pts = [lo, hi, est]
        if region:
            pts += [x for x in region if x is not None]
        a, b = min(pts), max(pts)
        span = b - a or max(abs(a), 1.0)
        a, b = a - 0.12 * span, b + 0.12 * span

        def X(v: float, a: float = a, b: float = b) -> float:
            return PLOT_L + (v - a) / (b - a) * (PLOT_R - PLOT_L)

        verdict = r.get("verdict", "")
        colour = COLOUR.get(verdict, "#5f6b73")
        out.append(f'<g class="forest-row" data-claim="{_esc(r.get("id"))}">')
        out.append(
            f"<title>{_esc(r.get('id'))}: {_esc(fmt_number(est))} "
            f"[{_esc(fmt_number(lo))}, {_esc(fmt_number(hi))}]; rule {_esc(r.get('rule'))}; "
            f"{_esc(verdict)}</title>"
        )
        label = str(r.get("id"))
        if len(label) > 26:
            label = label[:25] + "…"
        out.append(
            f'<text x="{_f(LABEL_W)}" y="{_f(y + 4)}" text-anchor="end" class="forest-label">'
            f"{_esc(label)}</text>"
        )
        out.append(
            f'<line x1="{_f(PLOT_L)}" y1="{_f(y)}" x2="{_f(PLOT_R)}" y2="{_f(y)}" '
            'stroke="#cfd8dc" stroke-width="1"/>'
        )
        if region:
            rlo, rhi, paper = region
            x1 = X(rlo) if rlo is not None else PLOT_L
            x2 = X(rhi) if rhi is not None else PLOT_R
            out.append(
                f'<rect class="forest-accept" x="{_f(x1)}" y="{_f(y - 9)}" width="{_f(x2 - x1)}" '
                'height="18" fill="#1b7f3b" fill-opacity="0.12"/>'
            )
            for edge in (rlo, rhi):
                if edge is None:
                    continue
                xe = X(edge)
                out.append(
                    f'<line class="forest-threshold" x1="{_f(xe)}" y1="{_f(y - 10)}" '
                    f'x2="{_f(xe)}" y2="{_f(y + 10)}" stroke="#1b7f3b" stroke-dasharray="3 2"/>'
                )
                out.append(
                    f'<text x="{_f(xe)}" y="{_f(y - 12)}" text-anchor="middle" '
                    f'font-size="9" class="forest-tick">{_esc(fmt_number(edge))}</text>'
                )
            if paper is not None:
                xp = X(paper)
                out.append(
                    f'<path class="forest-paper" d="M{_f(xp)},{_f(y - 5)} l4,5 l-4,5 l-4,-5z" '
                    'fill="#37474f"><title>paper\'s value</title></path>'
                )
        out.append(
            f'<path class="forest-ci" d="M{_f(X(lo))},{_f(y - 4)} v8 M{_f(X(lo))},{_f(y)} '
            f'H{_f(X(hi))} M{_f(X(hi))},{_f(y - 4)} v8" stroke="{colour}" stroke-width="2" '
            'fill="none"/>'
        )
        out.append(
            f'<circle class="forest-est" cx="{_f(X(est))}" cy="{_f(y)}" r="4" fill="{colour}"/>'
        )
        out.append(
            f'<text x="{_f(X(lo))}" y="{_f(y + 17)}" text-anchor="middle" font-size="9" '
            f'class="forest-tick">{_esc(fmt_number(lo))}</text>'
        )
        if abs(X(hi) - X(lo)) > 40:
            out.append(
                f'<text x="{_f(X(hi))}" y="{_f(y + 17)}" text-anchor="middle" font-size="9" '
                f'class="forest-tick">{_esc(fmt_number(hi))}</text>'
            )
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)
