"""What ``repro graph`` computes: statistics, PageRank, citation chains and lineage.

Everything runs on the citations (``build.citations``) unless it says otherwise: a mention in
our notes is our cross-reference, not the paper's, and would bend "most cited" and PageRank.
Results are plain dicts and lists, ready for ``--json``; ties are broken by id so that the
same cards always give the same answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from repro.graph.build import CITES, EDGE_KINDS, citations

if TYPE_CHECKING:
    import networkx as nx

TOP = 10  # how many cards "most cited" and "PageRank" list


def pagerank(
    D: nx.DiGraph, alpha: float = 0.85, tol: float = 1e-12, max_iter: int = 1000
) -> dict[str, float]:
    """PageRank of each node, rank flowing along the edges (from citing to cited paper).

        PR(v) = (1 - α)/N + α · ( Σ_{u -> v} PR(u) / out(u)  +  Σ_{u: out(u)=0} PR(u) / N )

    A paper that cites no card in the knowledge base (a "dangling" node) spreads its rank over
    all papers, as in the original definition. Power iteration from the uniform vector until
    the L1 change is below ``N · tol``. Written out here because ``networkx.pagerank`` needs
    scipy, which the project does not otherwise depend on.
    """
    nodes = sorted(D.nodes)
    n = len(nodes)
    if n == 0:
        return {}
    out_deg = {u: D.out_degree(u) for u in nodes}
    preds = {v: sorted(D.predecessors(v)) for v in nodes}
    dangling = [u for u in nodes if out_deg[u] == 0]
    pr = dict.fromkeys(nodes, 1.0 / n)
    for _ in range(max_iter):
        spread = alpha * sum(pr[u] for u in dangling) / n
        new = {
            v: (1.0 - alpha) / n + spread + alpha * sum(pr[u] / out_deg[u] for u in preds[v])
            for v in nodes
        }
        err = sum(abs(new[v] - pr[v]) for v in nodes)
        pr = new
        if err < n * tol:
            break
    return pr


def _card(G: nx.MultiDiGraph, cid: str, **extra: Any) -> dict[str, Any]:
    a = G.nodes[cid]
    return {"id": cid, "year": a["year"], "title": a["title"], **extra}


def stats(G: nx.MultiDiGraph, top: int = TOP) -> dict[str, Any]:
    """Counts, density, components, most cited, PageRank, and the same per collection."""
    import networkx as nx

    D = citations(G)
    n = G.number_of_nodes()
    by_kind = {k: 0 for k in EDGE_KINDS}
    for _u, _v, k in G.edges(keys=True):
        by_kind[k] += 1
    pairs = {(u, v) for u, v in G.edges()}
    both = sum(1 for u, v in pairs if len(G[u][v]) > 1)
    possible = n * (n - 1)
    comps = sorted(
        (sorted(c) for c in nx.weakly_connected_components(G)), key=lambda c: (-len(c), c[0])
    )
    cited = sorted(((D.in_degree(v), v) for v in D), key=lambda t: (-t[0], t[1]))
    pr = pagerank(D)
    ranked = sorted(pr, key=lambda v: (-pr[v], v))
    years = [a["year"] for _, a in G.nodes(data=True)]
    return {
        "nodes": n,
        "edges": {**by_kind, "pairs with both": both, "total": G.number_of_edges()},
        "density": {
            CITES: D.number_of_edges() / possible if possible else 0.0,
            "any": len(pairs) / possible if possible else 0.0,
        },
        "years": [min(years), max(years)] if years else [],
        "weakly_connected_components": {
            "count": len(comps),
            "sizes": [len(c) for c in comps],
            "isolated": sorted(c[0] for c in comps if len(c) == 1 and G.degree(c[0]) == 0),
        },
        "most_cited": [_card(G, v, cited_by=k) for k, v in cited[:top] if k > 0],
        "pagerank": [_card(G, v, pagerank=round(pr[v], 6)) for v in ranked[:top]],
        "collections": collection_stats(G, D, pr),
    }


def collection_stats(G: nx.MultiDiGraph, D: nx.DiGraph, pr: dict[str, float]) -> list[dict]:
    out = []
    titles = G.graph.get("collections", {})
    ids = sorted(set(titles) | {c for _, a in G.nodes(data=True) for c in a["collections"]})
    for col in ids:
        members = sorted(v for v, a in G.nodes(data=True) if col in a["collections"])
        inside = set(members)
        internal = sum(1 for u, v in D.edges() if u in inside and v in inside)
        out_edges = sum(1 for u, v in D.edges() if u in inside and v not in inside)
        in_edges = sum(1 for u, v in D.edges() if u not in inside and v in inside)
        cited = sorted(members, key=lambda v: (-D.in_degree(v), v))
        top_pr = sorted(members, key=lambda v: (-pr.get(v, 0.0), v))
        out.append(
            {
                "id": col,
                "title": titles.get(col, col),
                "members": len(members),
                "citations_inside": internal,
                "citations_to_outside": out_edges,
                "citations_from_outside": in_edges,
                "most_cited": cited[0] if cited and D.in_degree(cited[0]) else None,
                "top_pagerank": top_pr[0] if top_pr else None,
            }
        )
    return out


def count_paths(D: nx.DiGraph, source: str, target: str) -> int | None:
    """Number of citation chains source -> ... -> target; None where citations form a cycle."""
    import networkx as nx

    if not nx.is_directed_acyclic_graph(D):
        return None
    # Count along a topological order: ways(v) = Σ ways(u) over edges u -> v.
    ways = dict.fromkeys(D.nodes, 0)
    ways[source] = 1
    for u in nx.lexicographical_topological_sort(D):
        if ways[u]:
            for v in D.successors(u):
                ways[v] += ways[u]
    return ways[target]


def chains(D: nx.DiGraph, source: str, target: str, limit: int) -> list[list[str]]:
    """Up to ``limit`` citation chains from ``source`` back to ``target``, shortest first."""
    import itertools

    import networkx as nx

    if not nx.has_path(D, source, target):
        return []
    found = itertools.islice(nx.shortest_simple_paths(D, source, target), limit)
    return sorted(found, key=lambda p: (len(p), p))


def path(G: nx.MultiDiGraph, older: str, newer: str, limit: int = 10) -> dict[str, Any]:
    """How ``newer`` descends from ``older``: the citation chains from ``newer`` back to it.

    If there is none but there is one the other way, the two were given in the wrong order and
    the answer says so (``swapped``). With no chain either way, ``linked`` is the shortest
    connection ignoring direction and kind, so the reader still sees how the two relate.
    """
    import networkx as nx

    D = citations(G)
    swapped = False
    if not nx.has_path(D, newer, older) and nx.has_path(D, older, newer):
        older, newer, swapped = newer, older, True
    found = chains(D, newer, older, limit)
    res: dict[str, Any] = {
        "from": newer,
        "to": older,
        "swapped": swapped,
        "chains": found,
        "shortest": len(found[0]) - 1 if found else None,
        "count": count_paths(D, newer, older) if found else 0,
        "linked": None,
    }
    if not found:
        U = nx.Graph(G)
        if nx.has_path(U, newer, older):
            res["linked"] = nx.shortest_path(U, newer, older)
    return res


def lineage(G: nx.MultiDiGraph, cid: str) -> dict[str, Any]:
    """What ``cid`` builds on (the cards it cites, transitively) and what builds on it, by year.

    ``steps`` is the length of the shortest citation chain between the two cards.
    """
    import networkx as nx

    D = citations(G)
    back = nx.single_source_shortest_path_length(D, cid)
    forward = nx.single_source_shortest_path_length(D.reverse(copy=False), cid)

    def group(dist: dict[str, int]) -> list[dict[str, Any]]:
        rows = [_card(G, v, steps=d) for v, d in dist.items() if v != cid]
        return sorted(rows, key=lambda r: (r["year"], r["steps"], r["id"]))

    return {"card": _card(G, cid), "ancestors": group(back), "descendants": group(forward)}
