"""``repro graph``: statistics, citation chains, lineage, exports and a speed benchmark.

repro graph stats [--json]
repro graph path OLDER NEWER [--limit N] [--json]   chains from NEWER back to OLDER
repro graph lineage ID [--json]                     what it builds on, what builds on it
repro graph export [--out DIR] [--json]             graph.json and graph.graphml
repro graph bench [--cards N] [--repeat R] [--json] build + checks + SVG on made-up cards
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from repro.cards import did_you_mean


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # exit code 2 and one line, as `repro` does
        self.print_usage(sys.stderr)
        print(f"repro graph: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="repro graph", description="The citation graph built from the cards.")
    sub = p.add_subparsers(dest="what", metavar="COMMAND", parser_class=_Parser)
    s = sub.add_parser("stats", help="nodes, edges, density, components, most cited, PageRank")
    s.add_argument("--top", type=int, default=10, help="cards listed as most cited / PageRank")
    s.add_argument("--json", action="store_true")
    s = sub.add_parser("path", help="citation chains from NEWER back to OLDER")
    s.add_argument("older", help="card id of the earlier paper, e.g. bahdanau-attention")
    s.add_argument("newer", help="card id of the later paper, e.g. flash-attention")
    s.add_argument("--limit", type=int, default=10, help="chains to list, shortest first")
    s.add_argument("--json", action="store_true")
    s = sub.add_parser("lineage", help="ancestors and descendants of one card, by year")
    s.add_argument("card")
    s.add_argument("--json", action="store_true")
    s = sub.add_parser("export", help="write graph.json (node-link) and graph.graphml")
    s.add_argument("--out", default=None, help="folder (default: build/graph in the project)")
    s.add_argument("--json", action="store_true")
    s = sub.add_parser("bench", help="time build + checks + SVG on a made-up knowledge base")
    s.add_argument("--cards", type=int, default=100)
    s.add_argument("--repeat", type=int, default=5)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--json", action="store_true")
    return p


def _err(msg: str) -> int:
    print(f"repro graph: error: {msg}", file=sys.stderr)
    return 2


def _unknown(cid: str, G) -> str:
    return f"no card {cid!r}{did_you_mean(cid, G.nodes)}"


def _load():
    from repro import cards
    from repro.graph.build import build_graph

    kb = cards.load()
    return kb, build_graph(kb)


def _dump(obj: Any) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False))


# --------------------------------------------------------------------------- commands
def cmd_stats(args) -> int:
    from repro.graph.analyse import stats

    _kb, G = _load()
    if G.number_of_nodes() == 0:
        return _err("no cards found under notes/papers")
    s = stats(G, top=args.top)
    if args.json:
        _dump(s)
        return 0
    e, d, c = s["edges"], s["density"], s["weakly_connected_components"]
    print(
        f"{s['nodes']} cards ({s['years'][0]}-{s['years'][1]}), {e['cites']} citations, "
        f"{e['mentions']} links between notes ({e['pairs with both']} pairs have both)"
    )
    print(f"density: {d['cites']:.4f} (citations), {d['any']:.4f} (either kind)")
    sizes = ", ".join(map(str, c["sizes"][:12])) + (" …" if len(c["sizes"]) > 12 else "")
    print(f"weakly connected components: {c['count']} (sizes {sizes})")
    if c["isolated"]:
        print(f"cards with no edge: {', '.join(c['isolated'])}")
    print("\nmost cited here:")
    for r in s["most_cited"]:
        print(f"  {r['cited_by']:3d}  {r['id']} ({r['year']})")
    print("\nPageRank within the knowledge base:")
    for r in s["pagerank"]:
        print(f"  {r['pagerank']:.4f}  {r['id']} ({r['year']})")
    if s["collections"]:
        print(
            "\nper collection: cards, citations inside / to outside / from outside, "
            "most cited, top PageRank"
        )
        for col in s["collections"]:
            n = col["members"]
            print(
                f"  {col['id']}: {n} card{'s' if n != 1 else ''}, {col['citations_inside']} / "
                f"{col['citations_to_outside']} / {col['citations_from_outside']}, "
                f"{col['most_cited'] or '-'}, {col['top_pagerank'] or '-'}"
            )
    return 0


def cmd_path(args) -> int:
    from repro.graph.analyse import path

    _kb, G = _load()
    for cid in (args.older, args.newer):
        if cid not in G:
            return _err(_unknown(cid, G))
    if args.older == args.newer:
        return _err("give two different cards")
    res = path(G, args.older, args.newer, limit=max(1, args.limit))
    if args.json:
        _dump(res)
        return 0
    if res["swapped"]:
        print(f"{args.older} is the later paper; showing chains from it back to {args.newer}")
    if not res["chains"]:
        print(f"no citation chain from {res['from']} back to {res['to']} in either direction")
        if res["linked"]:
            print(f"connected ignoring direction: {' - '.join(res['linked'])}")
        return 1
    total = res["count"]
    more = f" of {total}" if total is not None else ""
    print(
        f"{len(res['chains'])}{more} citation chain(s) from {res['from']} back to {res['to']}, "
        f"shortest {res['shortest']} step(s):"
    )
    for chain in res["chains"]:
        years = [G.nodes[v]["year"] for v in chain]
        print("  " + " -> ".join(f"{v} ({y})" for v, y in zip(chain, years)))
    return 0


def cmd_lineage(args) -> int:
    from repro.graph.analyse import lineage

    _kb, G = _load()
    if args.card not in G:
        return _err(_unknown(args.card, G))
    res = lineage(G, args.card)
    if args.json:
        _dump(res)
        return 0
    me = res["card"]
    print(f"{me['id']} ({me['year']}): {me['title']}")
    for key, head in (
        ("ancestors", "builds on (cites, directly or through others)"),
        ("descendants", "built on by (cite it, directly or through others)"),
    ):
        rows = res[key]
        print(f"\n{head}: {len(rows)}")
        year = None
        for r in rows:
            if r["year"] != year:
                year = r["year"]
                print(f"  {year}")
            step = "direct" if r["steps"] == 1 else f"{r['steps']} steps"
            print(f"    {r['id']} ({step})")
    return 0


def cmd_export(args) -> int:
    from repro.graph.export import write_exports
    from repro.paths import project_root

    _kb, G = _load()
    out = Path(args.out) if args.out else project_root() / "build" / "graph"
    paths = write_exports(G, out)
    if args.json:
        _dump(
            {
                "files": [str(p) for p in paths],
                "nodes": G.number_of_nodes(),
                "edges": G.number_of_edges(),
            }
        )
    else:
        for p in paths:
            print(f"wrote {p}")
    return 0


def cmd_bench(args) -> int:
    import statistics
    import tempfile
    import time

    from repro import cards
    from repro.graph.build import build_graph
    from repro.graph.checks import run_checks
    from repro.graph.draw import full_html, neighbourhood_svg
    from repro.graph.synthetic import write_kb

    if args.cards < 2:
        return _err("--cards must be at least 2")
    cold = "networkx" not in sys.modules
    t0 = time.perf_counter()
    import networkx  # noqa: F401 - timed on its own: a one-off cost per process

    t_nx = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="repro-graph-bench-") as tmp:
        root = Path(tmp)
        ids = write_kb(root, args.cards, seed=args.seed)
        t0 = time.perf_counter()
        kb = cards.load(root)
        t_load = time.perf_counter() - t0
        results = root / "results"  # empty: no reproduction status to read
        times: dict[str, list[float]] = {"build": [], "checks": [], "svg": [], "total": []}
        card_pages: list[float] = []
        for _ in range(max(1, args.repeat)):
            t0 = time.perf_counter()
            G = build_graph(kb, results, reproductions={})
            t1 = time.perf_counter()
            errors, warnings = run_checks(kb)
            t2 = time.perf_counter()
            html = full_html(G, lambda c: f"papers/{c}/")
            t3 = time.perf_counter()
            for cid in ids:
                neighbourhood_svg(G, cid, lambda c: f"../{c}/")
            t4 = time.perf_counter()
            for k, dt in (
                ("build", t1 - t0),
                ("checks", t2 - t1),
                ("svg", t3 - t2),
                ("total", t3 - t0),
            ):
                times[k].append(dt)
            card_pages.append(t4 - t3)
    ms = {k: statistics.median(v) * 1000 for k, v in times.items()}
    res = {
        "cards": args.cards,
        "edges": G.number_of_edges(),
        "repeat": len(times["total"]),
        "import_networkx_ms": t_nx * 1000 if cold else None,
        "load_ms": t_load * 1000,
        **{f"{k}_ms": v for k, v in ms.items()},
        "first_total_ms": times["total"][0] * 1000,
        "best_total_ms": min(times["total"]) * 1000,
        "neighbourhood_svgs_ms": statistics.median(card_pages) * 1000,
        "page_html_bytes": len(html.encode()),
        "errors": len(errors),
        "warnings": len(warnings),
        "torch_imported": "torch" in sys.modules,
    }
    if args.json:
        _dump(res)
        return 0
    rows = [
        (
            "import networkx (once per process)",
            f"{res['import_networkx_ms']:.1f}" if cold else "already imported",
        ),
        ("load the cards (YAML + validation)", f"{res['load_ms']:.1f}"),
        ("build_graph", f"{ms['build']:.1f}"),
        ("run_checks", f"{ms['checks']:.1f}"),
        ("full_html (the SVG page)", f"{ms['svg']:.1f}"),
        (
            "build + checks + SVG",
            f"{ms['total']:.1f} (best {res['best_total_ms']:.1f}, "
            f"first run {res['first_total_ms']:.1f})",
        ),
        (f"all {res['cards']} neighbourhood SVGs", f"{res['neighbourhood_svgs_ms']:.1f}"),
    ]
    print(
        f"{res['cards']} synthetic cards, {res['edges']} edges; ms, median of {res['repeat']} runs:"
    )
    for name, val in rows:
        print(f"  {name:<38} {val}")
    print(
        f"  page HTML {res['page_html_bytes'] / 1024:.0f} KiB; torch imported: "
        f"{'yes' if res['torch_imported'] else 'no'}"
    )
    return 0


def main(argv: list[str]) -> int:
    parser = _parser()
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    return {
        "stats": cmd_stats,
        "path": cmd_path,
        "lineage": cmd_lineage,
        "export": cmd_export,
        "bench": cmd_bench,
    }[args.what](args)
