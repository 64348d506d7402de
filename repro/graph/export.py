"""Exports of the graph: node-link JSON (for scripts and the web) and GraphML (Gephi, Cytoscape).

GraphML has no list type and no null, so for ``graph.graphml`` a list becomes its items
joined by ``LIST_SEP`` (ids and tags are kebab-case, so they never hold a comma), a dict
becomes JSON text, and an attribute that is None is left out. :func:`read_graphml` undoes
exactly this, so a graph read back equals the graph written.

Both files are written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repro.results import atomic_write_text

if TYPE_CHECKING:
    import networkx as nx

LIST_SEP = ","
NODE_LISTS = ("tags", "collections")  # node attributes that are lists
NODE_OPTIONAL = ("repro", "status", "preset", "verdict")  # node attributes that may be None
GRAPH_DICTS = ("collections",)  # graph attributes that are dicts


def node_link(G: nx.MultiDiGraph) -> dict[str, Any]:
    import networkx as nx

    return nx.node_link_data(G, edges="edges")


def from_node_link(data: dict[str, Any]) -> nx.MultiDiGraph:
    import networkx as nx

    return nx.node_link_graph(data, directed=True, multigraph=True, edges="edges")


def _flat(G: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """A copy that GraphML can hold: lists joined, dicts as JSON, no None values."""
    import networkx as nx

    H = nx.MultiDiGraph()
    for k, v in G.graph.items():
        if v is not None:
            H.graph[k] = json.dumps(v, sort_keys=True) if isinstance(v, dict) else v
    for n, attrs in G.nodes(data=True):
        flat = {}
        for k, v in attrs.items():
            if v is None:
                continue
            if isinstance(v, list | tuple):
                flat[k] = LIST_SEP.join(map(str, v))
            else:
                flat[k] = v
        H.add_node(n, **flat)
    for u, v, key, attrs in G.edges(keys=True, data=True):
        H.add_edge(u, v, key=key, **{k: x for k, x in attrs.items() if x is not None})
    return H


def graphml_text(G: nx.MultiDiGraph) -> str:
    import networkx as nx

    return "\n".join(nx.generate_graphml(_flat(G), prettyprint=True)) + "\n"


def read_graphml(path: Path) -> nx.MultiDiGraph:
    """Read ``graph.graphml`` back into the graph :func:`write_exports` was given."""
    import networkx as nx

    H = nx.read_graphml(path, force_multigraph=True, edge_key_type=str)
    G = nx.MultiDiGraph()
    for k, v in H.graph.items():
        if k in ("node_default", "edge_default"):  # the reader's own bookkeeping
            continue
        G.graph[k] = json.loads(v) if k in GRAPH_DICTS and isinstance(v, str) else v
    for n, attrs in H.nodes(data=True):
        attrs = dict(attrs)
        for k in NODE_LISTS:
            text = attrs.get(k, "")
            attrs[k] = text.split(LIST_SEP) if text else []
        for k in NODE_OPTIONAL:
            attrs.setdefault(k, None)
        G.add_node(n, **attrs)
    for u, v, key, attrs in H.edges(keys=True, data=True):
        G.add_edge(u, v, key=key, **attrs)
    return G


def write_exports(G: nx.MultiDiGraph, out_dir: Path) -> list[Path]:
    """Write ``graph.json`` (node-link) and ``graph.graphml`` into ``out_dir``; return the paths."""
    out_dir = Path(out_dir)
    js = out_dir / "graph.json"
    gml = out_dir / "graph.graphml"
    atomic_write_text(
        js, json.dumps(node_link(G), indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    )
    atomic_write_text(gml, graphml_text(G))
    return [js, gml]
