"""Build-time SVG drawings of the citation graph: the whole graph, one card's neighbourhood, and
a miniature for the home page.

Layout of the whole graph: one column per year, oldest on the left, so time reads left to right.
Within each column the cards are ordered to keep linked cards at similar heights: a few sweeps
of the barycentre heuristic (each card moves to the mean height of its neighbours in the other
columns, as in Sugiyama-style layered drawing), keeping the order with the shortest total
vertical edge length; then each card is pulled towards that mean height while keeping the order
and a minimum gap. No randomness and every tie broken by id, so the same cards give a
byte-identical drawing.

Every node is an ``<a href>`` to its card with the title in ``<title>`` (shown on hover) and
``data-`` attributes (id, year, tags, collections, verdict) that ``notes/assets/graph.js``
reads to highlight neighbours and filter by collection and tag; ``notes/assets/graph.css``
styles it. Presentation attributes in the SVG keep it readable without either.
"""

from __future__ import annotations

import html
import math
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from repro.graph.build import CITES, MENTIONS

if TYPE_CHECKING:
    import networkx as nx

Href = Callable[[str], str]

SWEEPS = 12  # barycentre sweeps; the ordering stops improving after a handful on real cards
SETTLE = 8  # passes that pull cards towards their neighbours' height after the ordering
# A node's class: its headline finding's verdict (repro.claims.Verdict), or what stands in
# for one when there is none: no reproduction, not run yet, or a failed run.
NO_REPRO, NOT_RUN, FAILED = "none", "not-run", "failed"
FILL = {  # fallback colours when graph.css is not loaded (e.g. the SVG opened on its own)
    "none": "#9e9e9e",
    "not-run": "#ffffff",
    "reproduced": "#2e7d32",
    "inconclusive": "#f9a825",
    "not-reproduced": "#c62828",
    "not-checked": "#90a4ae",
    "failed": "#6a1b9a",
}


# --------------------------------------------------------------------------- helpers
_LAST: list[Any] = []  # [weakref to the last knowledge base drawn, its graph]


def _graph(kb_or_graph: Any) -> nx.MultiDiGraph:
    """A graph as given, or built from a knowledge base (the last one is kept: a site build
    draws every card's neighbourhood from the same knowledge base)."""
    if not (hasattr(kb_or_graph, "cards") and hasattr(kb_or_graph, "collections")):
        return kb_or_graph
    if _LAST and _LAST[0]() is kb_or_graph:
        return _LAST[1]
    from repro.graph.build import build_graph

    G = build_graph(kb_or_graph)
    _LAST[:] = [weakref.ref(kb_or_graph), G]
    return G


def _esc(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _f(x: float) -> str:
    """Coordinates with one decimal: short, and identical across runs and platforms."""
    s = f"{x:.1f}"
    return "0.0" if s == "-0.0" else s


def _verdict_class(a: dict) -> str:
    from repro.claims import Verdict

    if not a.get("repro"):
        return NO_REPRO
    if a.get("status") in (None, "not run"):
        return NOT_RUN
    if a.get("status") != "ok":
        return FAILED
    v = a.get("verdict")
    return Verdict(v).css if v in {x.value for x in Verdict} else "not-checked"


def label_of(a: dict[str, Any], cid: str, limit: int) -> str:
    """The card's ``short`` name where it has one, else a short form of its title."""
    return a.get("short") or short_name(a.get("title", cid), cid, limit)


def _verdict_text(a: dict[str, Any]) -> str:
    """'findings: 2 reproduced, 1 not reproduced, 0 inconclusive · checks: 4 pass' or why none."""
    if not a.get("repro"):
        return "no reproduction yet"
    if a.get("status") in (None, "not run"):
        return "reproduction not run yet"
    if a.get("status") != "ok":
        return f"reproduction run {a['status']}"
    f = (
        f"findings: {a.get('reproduced', 0)} reproduced, {a.get('not_reproduced', 0)} not "
        f"reproduced, {a.get('inconclusive', 0)} inconclusive"
    )
    if a.get("not_checked"):
        f += f", {a['not_checked']} not checked at this scale"
    checks = a.get("checks_passed", 0) + a.get("checks_failed", 0)
    if checks:
        f += f" · implementation checks: {a.get('checks_passed', 0)}/{checks} pass"
    return f + (f" (preset {a['preset']})" if a.get("preset") else "")


def short_name(title: str, cid: str, limit: int) -> str:
    """A label that fits: the name before a colon ("FlashAttention"), the title, or the id."""
    head = title.split(":", 1)[0].strip()
    for cand in (head, title, cid):
        if len(cand) <= limit:
            return cand
    return cid[: limit - 1] + "…"


def _radius(G: nx.MultiDiGraph, v: str, base: float, step: float, top: float) -> float:
    cited = sum(1 for u in G.predecessors(v) if CITES in G[u][v])
    return min(top, base + step * math.sqrt(cited))


def _tooltip(a: dict[str, Any]) -> str:
    lines = [f"{a['title']} ({a['year']})"]
    if a.get("verdict"):
        lines.append(f"headline finding: {a['verdict']}")
    elif a.get("status") and a.get("status") != "ok":
        lines.append(f"reproduction: {a['status']}")
    if a.get("tags"):
        lines.append("tags: " + ", ".join(a["tags"]))
    return "\n".join(lines)


def _node(
    G: nx.MultiDiGraph,
    v: str,
    x: float,
    y: float,
    r: float,
    href: Href,
    *,
    label: str | None,
    label_side: str = "right",
    extra_class: str = "",
) -> str:
    a = G.nodes[v]
    vc = _verdict_class(a)
    cls = f"rg-node rg-v-{vc}" + (f" {extra_class}" if extra_class else "")
    parts = [
        f'<a href="{_esc(href(v))}" class="{cls}" data-id="{_esc(v)}" data-year="{a["year"]}" '
        f'data-tags="{_esc(" ".join(a.get("tags") or []))}" '
        f'data-collections="{_esc(" ".join(a.get("collections") or []))}" '
        f'data-verdict="{vc}" data-title="{_esc(a["title"])}" '
        f'data-tldr="{_esc(a.get("tldr") or "")}" data-verdicts="{_esc(_verdict_text(a))}">',
        f"<title>{_esc(_tooltip(a))}</title>",
        f'<circle cx="{_f(x)}" cy="{_f(y)}" r="{_f(r)}" fill="{FILL[vc]}" stroke="#455a64" '
        'stroke-width="1.2"/>',
    ]
    if label is not None:
        if label_side == "right":
            tx, anchor = x + r + 4, "start"
        elif label_side == "left":
            tx, anchor = x - r - 4, "end"
        else:
            tx, anchor = x, "middle"
        if label_side == "below":  # under the node, clear of the arrowheads at its sides
            tx, anchor = x - r, "start"
        ty = (
            y - r - 5 if label_side == "above" else (y + r + 10 if label_side == "below" else y + 4)
        )
        # A halo in the background colour keeps a label readable where edges cross it.
        parts.append(
            f'<text x="{_f(tx)}" y="{_f(ty)}" text-anchor="{anchor}" '
            f'paint-order="stroke" stroke="#fff" stroke-width="3">{_esc(label)}</text>'
        )
    parts.append("</a>")
    return "".join(parts)


def _edge(u: str, v: str, kinds: list[str], d: str, prefix: str, later: bool = False) -> str:
    cls = "rg-edge " + " ".join(f"rg-{k}" for k in kinds) + (" rg-later" if later else "")
    cites = CITES in kinds
    style = (
        f'stroke="#90a4ae" marker-end="url(#{prefix}-arrow)"'
        if cites
        else 'stroke="#b0bec5" stroke-dasharray="4 3"'
    )
    return (
        f'<path class="{cls}" data-source="{_esc(u)}" data-target="{_esc(v)}" d="{d}" '
        f'fill="none" stroke-width="1" {style}/>'
    )


def _curve(x1: float, y1: float, x2: float, y2: float, bulge: float | None = None) -> str:
    """A cubic Bézier leaving and entering horizontally; ``bulge`` bends a same-column edge."""
    if bulge is not None:
        c1x = c2x = x1 - bulge
    else:
        dx = (x2 - x1) / 2
        c1x, c2x = x1 + dx, x2 - dx
    return f"M{_f(x1)},{_f(y1)} C{_f(c1x)},{_f(y1)} {_f(c2x)},{_f(y2)} {_f(x2)},{_f(y2)}"


def _defs(prefix: str) -> str:
    return (
        f'<defs><marker id="{prefix}-arrow" viewBox="0 0 8 8" refX="7.5" refY="4" '
        'markerWidth="5" markerHeight="5" orient="auto-start-reverse">'
        '<path d="M0,0L8,4L0,8z" class="rg-arrowhead" fill="#90a4ae"/></marker></defs>'
    )


def _pairs(G: nx.MultiDiGraph) -> list[tuple[str, str, list[str]]]:
    """Each linked ordered pair once, with its kinds (a pair with both is drawn once)."""
    out = []
    for u, v in sorted({(u, v) for u, v in G.edges() if u != v}):
        out.append((u, v, [k for k in (CITES, MENTIONS) if k in G[u][v]]))
    return out


# --------------------------------------------------------------------------- layout
@dataclass
class Layout:
    pos: dict[str, tuple[float, float]]  # node -> (x, y) in SVG units
    years: list[tuple[int, float]]  # (year, x) of each column
    width: float
    height: float
    top: float  # y of the first row (year labels sit above it)
    bottom: float  # y of the last row


def _neighbours(G: nx.MultiDiGraph) -> dict[str, list[tuple[str, float]]]:
    # Citations hold the drawing together; our own mentions pull half as hard.
    weight: dict[tuple[str, str], float] = {}
    for u, v, k in G.edges(keys=True):
        if u == v:
            continue
        w = 1.0 if k == CITES else 0.5
        key = (u, v) if u < v else (v, u)
        weight[key] = max(weight.get(key, 0.0), w)
    nb: dict[str, list[tuple[str, float]]] = {v: [] for v in G.nodes}
    for (u, v), w in sorted(weight.items()):
        nb[u].append((v, w))
        nb[v].append((u, w))
    return nb


def _spaced_fit(want: list[float], weight: list[float], gap: float) -> list[float]:
    """Heights y_i closest to ``want`` (weighted least squares) with y_{i+1} - y_i >= gap.

    With z_i = y_i - i·gap the constraint becomes z non-decreasing: isotonic regression,
    solved exactly by pooling adjacent violators.
    """
    blocks: list[list[float]] = []  # [weighted mean, total weight, count]
    for i, (w_i, c) in enumerate(zip(want, weight)):
        blocks.append([w_i - i * gap, c, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, c2, n2 = blocks.pop()
            m1, c1, n1 = blocks.pop()
            blocks.append([(m1 * c1 + m2 * c2) / (c1 + c2), c1 + c2, n1 + n2])
    out: list[float] = []
    for m, _c, n in blocks:
        start = len(out)
        out.extend([m + (start + k) * gap for k in range(n)])
    return out


def layout(
    G: nx.MultiDiGraph,
    *,
    col_w: float = 150.0,
    row_h: float = 26.0,
    left: float = 30.0,
    right: float = 170.0,
    top: float = 40.0,
    bottom: float = 20.0,
) -> Layout:
    """Year columns left to right; within a column, order and height follow the neighbours."""
    years = sorted({a["year"] for _, a in G.nodes(data=True)})
    col_of = {y: i for i, y in enumerate(years)}
    columns: list[list[str]] = [[] for _ in years]
    for v in sorted(G.nodes):
        columns[col_of[G.nodes[v]["year"]]].append(v)
    year_of = {v: col_of[G.nodes[v]["year"]] for v in G.nodes}
    nb = _neighbours(G)

    def place(col: list[str], ys: dict[str, float]) -> None:
        mid = (len(col) - 1) / 2
        for i, v in enumerate(col):
            ys[v] = (i - mid) * row_h

    def bary(v: str, ys: dict[str, float]) -> float | None:
        pts = [(ys[u], w) for u, w in nb[v] if year_of[u] != year_of[v]]
        if not pts:
            return None
        return sum(y * w for y, w in pts) / sum(w for _, w in pts)

    def cost(ys: dict[str, float]) -> float:
        return sum(w * abs(ys[u] - ys[v]) for u in nb for v, w in nb[u] if u < v)

    ys: dict[str, float] = {}
    for col in columns:
        place(col, ys)
    best = ([list(c) for c in columns], cost(ys))
    for sweep in range(SWEEPS):
        order = range(len(columns)) if sweep % 2 == 0 else range(len(columns) - 1, -1, -1)
        for ci in order:
            col = columns[ci]
            keys = {v: (b if (b := bary(v, ys)) is not None else ys[v], ys[v], v) for v in col}
            col.sort(key=keys.__getitem__)
            place(col, ys)
        c = cost(ys)
        if c < best[1] - 1e-9:
            best = ([list(col) for col in columns], c)
    columns = best[0]
    for col in columns:
        place(col, ys)

    # Pull each card towards its neighbours' height, keeping the order and a gap of row_h.
    for sweep in range(SETTLE):
        order = range(len(columns)) if sweep % 2 == 0 else range(len(columns) - 1, -1, -1)
        for ci in order:
            col = columns[ci]
            want, weight = [], []
            for v in col:
                b = bary(v, ys)
                same = [ys[u] for u, _w in nb[v] if year_of[u] == ci]
                if b is not None:
                    want.append(b)
                    weight.append(1.0)
                elif same:  # only linked within its year: sit beside those cards
                    want.append(sum(same) / len(same))
                    weight.append(0.5)
                else:  # unlinked: a weak pull to the middle keeps the drawing compact
                    want.append(0.0)
                    weight.append(0.05)
            for v, y in zip(col, _spaced_fit(want, weight, row_h)):
                ys[v] = y

    lo = min(ys.values(), default=0.0)
    hi = max(ys.values(), default=0.0)
    pos = {v: (left + year_of[v] * col_w, top + ys[v] - lo) for v in sorted(G.nodes)}
    width = left + max(len(years) - 1, 0) * col_w + right
    return Layout(
        pos=pos,
        years=[(y, left + i * col_w) for i, y in enumerate(years)],
        width=width,
        height=top + (hi - lo) + bottom,
        top=top,
        bottom=top + hi - lo,
    )


# --------------------------------------------------------------------------- drawings
def _svg_open(width: float, height: float, cls: str, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="rg-svg {cls}" '
        f'viewBox="0 0 {_f(width)} {_f(height)}" width="{_f(width)}" height="{_f(height)}" '
        f'role="img" aria-label="{_esc(label)}" font-family="sans-serif" font-size="11">'
    )


def _whole(
    G: nx.MultiDiGraph,
    href: Href,
    *,
    prefix: str,
    cls: str,
    labels: bool,
    col_w: float,
    row_h: float,
    radius: tuple[float, float, float],
    year_every: int = 1,
) -> str:
    right = col_w + 20 if labels else 20.0
    lay = layout(
        G,
        col_w=col_w,
        row_h=row_h,
        left=30.0 if labels else 16.0,
        right=right,
        top=40.0 if labels else 14.0,
        bottom=20.0 if labels else 18.0,
    )
    r = {v: _radius(G, v, *radius) for v in G.nodes}
    n_cites = sum(1 for _u, _v, k in G.edges(keys=True) if k == CITES)
    out = [
        _svg_open(
            lay.width,
            lay.height,
            cls,
            f"Citation graph: {G.number_of_nodes()} papers, {n_cites} citations",
        ),
        _defs(prefix),
        '<g class="rg-years">',
    ]
    for i, (year, x) in enumerate(lay.years):
        out.append(
            f'<line x1="{_f(x)}" y1="{_f(lay.top - 12)}" x2="{_f(x)}" '
            f'y2="{_f(lay.bottom + 10)}" stroke="#eceff1"/>'
        )
        if i % year_every == 0:
            ty = lay.top - 20 if labels else lay.height - 4
            out.append(
                f'<text x="{_f(x)}" y="{_f(ty)}" text-anchor="middle" class="rg-year">{year}</text>'
            )
    out.append('</g><g class="rg-edges">')
    for u, v, kinds in _pairs(G):
        (x1, y1), (x2, y2) = lay.pos[u], lay.pos[v]
        if abs(x1 - x2) < 1e-6:
            bulge = 14 + 0.35 * abs(y1 - y2)
            d = _curve(x1 - r[u], y1, x2 - r[v], y2, bulge=bulge)
        elif x1 > x2:
            d = _curve(x1 - r[u], y1, x2 + r[v], y2)
        else:
            d = _curve(x1 + r[u], y1, x2 - r[v], y2)
        out.append(_edge(u, v, kinds, d, prefix, later=x1 < x2 and CITES in kinds))
    out.append('</g><g class="rg-nodes">')
    limit = max(4, int((col_w - 22) / 5.9))
    for v in sorted(G.nodes):
        x, y = lay.pos[v]
        label = label_of(G.nodes[v], v, limit) if labels else None
        out.append(_node(G, v, x, y, r[v], href, label=label, label_side="below"))
    out.append("</g></svg>")
    return "".join(out)


def full_svg(kb_or_graph: Any, href: Href) -> str:
    """The whole graph: x = year, every card a link (``href(card_id)``), its title on hover."""
    return _whole(
        _graph(kb_or_graph),
        href,
        prefix="rg",
        cls="rg-full",
        labels=True,
        col_w=170.0,
        row_h=34.0,
        radius=(4.0, 1.6, 11.0),
    )


def mini_svg(kb_or_graph: Any, href: Href) -> str:
    """A small unlabelled overview for the home page (same layout, titles on hover)."""
    G = _graph(kb_or_graph)
    years = len({a["year"] for _, a in G.nodes(data=True)})
    return _whole(
        G,
        href,
        prefix="rgm",
        cls="rg-mini",
        labels=False,
        col_w=26.0,
        row_h=9.0,
        radius=(2.5, 0.7, 5.0),
        year_every=max(1, math.ceil(years / 8)),
    )


def _options(values: Iterable[tuple[str, str, int]]) -> str:
    return "".join(
        f'<option value="{_esc(v)}">{_esc(label)} ({n})</option>' for v, label, n in values
    )


def full_html(kb_or_graph: Any, href: Href) -> str:
    """``full_svg`` inside its filter controls and legend, for the graph page.

    One block of HTML with no blank lines, so Markdown passes it through untouched. The
    controls stay hidden until ``graph.js`` runs, since without it they would do nothing.
    """
    G = _graph(kb_or_graph)
    titles = G.graph.get("collections", {})
    col_n: dict[str, int] = {}
    tag_n: dict[str, int] = {}
    for _, a in G.nodes(data=True):
        for c in a.get("collections") or []:
            col_n[c] = col_n.get(c, 0) + 1
        for t in a.get("tags") or []:
            tag_n[t] = tag_n.get(t, 0) + 1
    cols = sorted(((c, titles.get(c, c), n) for c, n in col_n.items()), key=lambda t: t[1])
    tags = sorted((t, t, n) for t, n in tag_n.items())
    legend = "".join(
        f'<span class="rg-key"><svg width="12" height="12" aria-hidden="true"><circle cx="6" '
        f'cy="6" r="5" class="rg-v-{c}" fill="{FILL[c]}" stroke="#455a64"/></svg>{_esc(t)}</span>'
        for c, t in (
            ("reproduced", "headline reproduced"),
            ("not-reproduced", "not reproduced"),
            ("inconclusive", "inconclusive"),
            ("not-checked", "not checked at this scale"),
            ("not-run", "reproduction not run"),
            ("none", "no reproduction"),
        )
    )
    return "".join(
        [
            '<div class="repro-graph">',
            '<form class="rg-controls" hidden="">',
            '<label>Collection <select data-rg-filter="collections"><option value="">all</option>',
            _options(cols),
            "</select></label>",
            '<label>Tag <select data-rg-filter="tags"><option value="">all</option>',
            _options(tags),
            "</select></label>",
            '<output class="rg-count"></output></form>',
            f'<p class="rg-legend">{legend}<span class="rg-key">size: cited by more cards here; '
            "solid arrow: cites; dashed: linked from our notes</span></p>",
            '<div class="rg-scroll">',
            full_svg(G, href),
            "</div>",
            # Filled by graph.js when a card is clicked: a look before leaving the page.
            '<aside class="rg-panel" hidden="" aria-live="polite"><button type="button" '
            'class="rg-panel-close" aria-label="Close">×</button><h3 class="rg-panel-title">'
            '</h3><p class="rg-panel-year"></p><p class="rg-panel-tldr"></p>'
            '<p class="rg-panel-verdicts"></p><a class="rg-panel-open md-button" href="#">'
            "Open the card</a></aside>",
            "</div>",
        ]
    )


MAX_SIDE = 12  # neighbours drawn on each side of a card; the rest are counted


def _side(G: nx.MultiDiGraph, ids: list[str]) -> tuple[list[str], int]:
    """The most cited ``MAX_SIDE`` of ``ids`` (by year, then id) and how many were left out."""
    if len(ids) <= MAX_SIDE:
        chosen = ids
    else:
        cited = {v: sum(1 for u in G.predecessors(v) if CITES in G[u][v]) for v in ids}
        chosen = sorted(ids, key=lambda v: (-cited[v], v))[: MAX_SIDE - 1]
    chosen = sorted(chosen, key=lambda v: (G.nodes[v]["year"], v))
    return chosen, len(ids) - len(chosen)


def neighbourhood_svg(kb_or_graph: Any, card_id: str, href: Href) -> str:
    """One card in the middle, the cards it cites on the left, the cards citing it on the right."""
    G = _graph(kb_or_graph)
    if card_id not in G:
        raise KeyError(f"no card {card_id!r} in the graph")
    cited = sorted(v for v in G.successors(card_id) if CITES in G[card_id][v] and v != card_id)
    citing = sorted(u for u in G.predecessors(card_id) if CITES in G[u][card_id] and u != card_id)
    left_ids, left_more = _side(G, cited)
    right_ids, right_more = _side(G, citing)
    row_h, width, xl, xc, xr = 22.0, 640.0, 200.0, 320.0, 440.0
    rows = max(len(left_ids) + bool(left_more), len(right_ids) + bool(right_more), 1)
    top = 34.0
    height = top + rows * row_h + 8
    mid = top + (rows - 1) * row_h / 2
    r = 5.0

    def ys(n: int) -> list[float]:
        start = mid - (n - 1) * row_h / 2
        return [start + i * row_h for i in range(n)]

    me = G.nodes[card_id]
    out = [
        _svg_open(
            width,
            height,
            "rg-neighbourhood",
            f"{me['title']}: cites {len(cited)} cards here, cited by {len(citing)}",
        ),
        _defs("rgn"),
        f'<text x="{_f(xl)}" y="14" text-anchor="end" class="rg-heading">cites</text>'
        f'<text x="{_f(xr)}" y="14" class="rg-heading">cited by</text>',
        '<g class="rg-edges">',
    ]
    # A side with more cards than it shows keeps its last row for the "+N more" line.
    left_y = ys(len(left_ids) + bool(left_more))
    right_y = ys(len(right_ids) + bool(right_more))
    for v, y in zip(left_ids, left_y):
        out.append(_edge(card_id, v, [CITES], _curve(xc - 8, mid, xl + r, y), "rgn"))
    for u, y in zip(right_ids, right_y):
        out.append(_edge(u, card_id, [CITES], _curve(xr - r, y, xc + 8, mid), "rgn"))
    out.append('</g><g class="rg-nodes">')
    for v, y in zip(left_ids, left_y):
        label = f"{label_of(G.nodes[v], v, 26)} · {G.nodes[v]['year']}"
        out.append(_node(G, v, xl, y, r, href, label=label, label_side="left"))
    for u, y in zip(right_ids, right_y):
        label = f"{label_of(G.nodes[u], u, 26)} · {G.nodes[u]['year']}"
        out.append(_node(G, u, xr, y, r, href, label=label, label_side="right"))
    out.append(
        _node(
            G,
            card_id,
            xc,
            mid,
            8.0,
            href,
            label=label_of(me, card_id, 30),
            label_side="above",
            extra_class="rg-self",
        )
    )
    out.append("</g>")
    for more, x, anchor, col_y in (
        (left_more, xl, "end", left_y),
        (right_more, xr, "start", right_y),
    ):
        if more:
            out.append(
                f'<text x="{_f(x)}" y="{_f(col_y[-1] + 4)}" text-anchor="{anchor}" '
                f'class="rg-more">+{more} more</text>'
            )
    if not cited and not citing:
        out.append(
            f'<text x="{_f(xc)}" y="{_f(mid + 24)}" text-anchor="middle" class="rg-more">'
            "no citations to or from other cards yet</text>"
        )
    out.append("</svg>")
    return "".join(out)
