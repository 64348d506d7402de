"""Build the citation graph from a loaded knowledge base.

The graph is a ``networkx.MultiDiGraph`` (a subclass of ``DiGraph``). An edge ``u -> v`` means
card ``u`` points at card ``v``; the edge key is its kind, so a pair that has both kinds keeps
both edges, and each edge also carries the attribute ``kind``:

  ``cites``     ``v`` is listed in ``u``'s front matter ``cites:`` (a citation in the paper)
  ``mentions``  ``u``'s notes link to ``v``'s card (``[text](v.md)``): our cross-reference,
                not the paper's, so it is kept apart from the citations

``G.edges[u, v, "cites"]`` tests one kind; :func:`citations` gives the plain ``DiGraph`` of
citations that the analyses (paths, PageRank, lineage) run on.

Node attributes (every node has every key):
  ``title`` str, ``year`` int, ``tags`` list[str], ``collections`` list[str] (collection ids,
  sorted), ``repro`` reproduction id or None, ``status`` None (no reproduction), "not run", or
  the best result's run status ("ok", "crashed", ...), ``preset`` of that result or None,
  ``verdict`` the headline finding's verdict (a ``repro.claims.Verdict`` value) or None
  (no reproduction, not run, failed run, no finding), and the counts of findings
  ``reproduced``, ``not_reproduced``, ``inconclusive``, ``not_checked`` and of implementation
  checks ``checks_passed``, ``checks_failed`` (0 without results; the kinds are never summed).

Graph attributes: ``collections`` {collection id: title}.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import networkx as nx

    from repro.cards import Card, KnowledgeBase

CITES = "cites"
MENTIONS = "mentions"
EDGE_KINDS = (CITES, MENTIONS)

# [text](target "title") and [label]: target, the two Markdown link forms that name a file.
_INLINE_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^)]*)?\)")
_REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+[\"'(].*)?$")
_CODE_SPAN = re.compile(r"`+[^`]*`+")
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def link_targets(card: Card) -> Iterator[tuple[str, int]]:
    """(card id, file line) for every link in the notes that points at a card file.

    Links are resolved as mkdocs resolves them, relative to ``notes/papers/``: ``bert.md``,
    ``./bert.md#method`` and ``../papers/bert.md`` all name ``bert``. Links inside code are
    examples, not references, and are skipped. The id is not checked against the cards here.
    """
    fence: str | None = None
    for i, line in enumerate(card.body.split("\n")):
        m = _FENCE.match(line)
        if m:
            mark = m.group(1)
            if fence is None:
                fence = mark[0] * len(mark)
            elif mark.startswith(fence):
                fence = None
            continue
        if fence is not None:
            continue
        text = _CODE_SPAN.sub("", line)
        targets = _INLINE_LINK.findall(text)
        ref = _REF_DEF.match(text)
        if ref:
            targets.append(ref.group(1))
        for target in targets:
            cid = _card_of(target)
            if cid is not None:
                yield cid, card.body_line + i


def _card_of(target: str) -> str | None:
    if _SCHEME.match(target) or target.startswith(("/", "#")):
        return None
    path = target.split("#", 1)[0].split("?", 1)[0]
    if not path.endswith(".md"):
        return None
    resolved = posixpath.normpath(posixpath.join("papers", path))
    folder, name = posixpath.split(resolved)
    if folder != "papers":
        return None
    return name[: -len(".md")]


def _collection_map(kb: KnowledgeBase) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {cid: [] for cid in kb.cards}
    for col_id in sorted(kb.collections):
        for member in kb.collections[col_id].meta.all_members():
            if member in out and col_id not in out[member]:
                out[member].append(col_id)
    return out


def structure(kb: KnowledgeBase) -> nx.MultiDiGraph:
    """Nodes and edges from the cards alone, without reading any results (what checks need).

    References to ids that are no card are left out of the graph; ``run_checks`` reports them.
    """
    import networkx as nx

    G = nx.MultiDiGraph()
    G.graph["collections"] = {cid: kb.collections[cid].meta.title for cid in sorted(kb.collections)}
    cols = _collection_map(kb)
    for cid in sorted(kb.cards):
        m = kb.cards[cid].meta
        G.add_node(
            cid,
            title=m.title,
            short=m.short or "",
            tldr=m.tldr or "",
            year=m.year,
            tags=list(m.tags),
            collections=cols[cid],
            repro=m.repro,
            status=None,
            preset=None,
            verdict=None,
            reproduced=0,
            not_reproduced=0,
            inconclusive=0,
            not_checked=0,
            checks_passed=0,
            checks_failed=0,
        )
    for cid in sorted(kb.cards):
        card = kb.cards[cid]
        for target in card.meta.cites:
            if target in kb.cards and target != cid:
                G.add_edge(cid, target, key=CITES, kind=CITES)
        for target, _line in link_targets(card):
            if target in kb.cards and target != cid:
                G.add_edge(cid, target, key=MENTIONS, kind=MENTIONS)
    return G


def _registry_map() -> dict[str, str]:
    """{card id: reproduction id} from the registered reproductions' ``papers``."""
    try:
        from repro.registry import all_reproductions

        reps = all_reproductions()
    except Exception:  # noqa: BLE001 - a broken declaration is `repro check`'s to report
        return {}
    out: dict[str, str] = {}
    for rep in sorted(reps.values(), key=lambda r: r.id):
        for pid in rep.papers:
            out.setdefault(pid, rep.id)
    return out


def _headline(best: Mapping) -> str | None:
    """A card's verdict in the graph: its headline finding's (the first finding declared),
    a value of :class:`repro.claims.Verdict`; None when the run failed or has no finding."""
    from repro.claims import FINDING

    if best.get("status") != "ok":
        return None
    for c in best.get("claims", []):
        if c.get("kind", FINDING) == FINDING:  # rows without a kind predate kinds: findings
            return c.get("verdict")
    return None


def build_graph(
    kb: KnowledgeBase,
    results_base: Path | None = None,
    *,
    reproductions: Mapping[str, str] | None = None,
) -> nx.MultiDiGraph:
    """The citation graph with each card's reproduction and its latest verdicts.

    ``results_base``: the results folder (default: the project's ``results/``).
    ``reproductions``: {card id: reproduction id} for cards without ``repro:`` in their front
    matter; None asks the registry (imports the declarations, never torch).
    """
    from repro.claims import CHECK, FINDING, Verdict
    from repro.results import best_result, latest_results, verdict_counts

    G = structure(kb)
    by_paper = _registry_map() if reproductions is None else dict(reproductions)
    for cid, attrs in G.nodes(data=True):
        rep_id = attrs["repro"] or by_paper.get(cid)
        if rep_id is None:
            continue
        attrs["repro"] = rep_id
        results, _warnings = latest_results(rep_id, base=results_base)
        best = best_result(results)
        if best is None:
            attrs["status"] = "not run"
            continue
        counts = verdict_counts(best)
        f, c = counts[FINDING], counts[CHECK]
        attrs.update(
            status=str(best.get("status") or "unknown"),
            preset=best.get("preset"),
            verdict=_headline(best),
            reproduced=f[Verdict.REPRODUCED],
            not_reproduced=f[Verdict.NOT_REPRODUCED],
            inconclusive=f[Verdict.INCONCLUSIVE],
            not_checked=f[Verdict.NOT_CHECKED],
            checks_passed=c[Verdict.PASS],
            checks_failed=c[Verdict.FAIL],
        )
    return G


def citations(G: nx.MultiDiGraph) -> nx.DiGraph:
    """The citations alone as a simple ``DiGraph`` (same nodes and node attributes)."""
    import networkx as nx

    D = nx.DiGraph()
    D.add_nodes_from(G.nodes(data=True))
    D.add_edges_from((u, v) for u, v, k in G.edges(keys=True) if k == CITES)
    return D


def edge_kinds(G: nx.MultiDiGraph, u: str, v: str) -> list[str]:
    """The kinds of the edges u -> v, in ``EDGE_KINDS`` order."""
    if not G.has_edge(u, v):
        return []
    return [k for k in EDGE_KINDS if k in G[u][v]]
