"""Exports round-trip; drawings are deterministic, well-formed, and every node links to a page."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import pytest
from graph_kb import write_card, write_kb

from repro import cards
from repro.graph import draw
from repro.graph.build import build_graph
from repro.graph.export import from_node_link, read_graphml, write_exports

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_kb(tmp_path)


@pytest.fixture
def G(root: Path):
    return build_graph(cards.load(root), root / "results", reproductions={})


def same_graph(A, B) -> bool:
    return (
        A.graph == B.graph
        and dict(A.nodes(data=True)) == dict(B.nodes(data=True))
        and sorted(A.edges(keys=True, data=True)) == sorted(B.edges(keys=True, data=True))
    )


# --------------------------------------------------------------------------- exports
def test_exports_round_trip(G, tmp_path: Path):
    G.nodes["a"].update(repro="rep-a", status="ok", verdict="reproduced", reproduced=2)
    paths = write_exports(G, tmp_path / "out")
    assert [p.name for p in paths] == ["graph.json", "graph.graphml"]
    back = read_graphml(tmp_path / "out" / "graph.graphml")
    assert same_graph(back, G)
    data = json.loads((tmp_path / "out" / "graph.json").read_text())
    assert same_graph(from_node_link(data), G)
    assert not list((tmp_path / "out").glob(".*"))  # no temporary files left behind


def test_graphml_opens_in_plain_networkx(G, tmp_path: Path):
    """What Gephi or Cytoscape see: flat attributes, lists as comma-separated text."""
    write_exports(G, tmp_path)
    H = nx.read_graphml(tmp_path / "graph.graphml")
    assert H.nodes["b"]["tags"] == "attention,architecture"
    assert H.nodes["b"]["year"] == 2017
    assert "repro" not in H.nodes["b"]  # None is left out, not written as "None"
    assert H.number_of_edges() == G.number_of_edges()


# --------------------------------------------------------------------------- drawings
def href_for(root: Path):
    return lambda cid: f"papers/{cid}.md"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises on anything that is not well-formed XML


def nodes_of(el: ET.Element) -> dict[str, ET.Element]:
    return {a.get("data-id"): a for a in el.iter(f"{SVG}a")}


def test_full_drawing_is_deterministic(root: Path, G):
    first = draw.full_svg(G, href_for(root))
    again = draw.full_svg(
        build_graph(cards.load(root), root / "results", reproductions={}), href_for(root)
    )
    assert first == again
    assert draw.full_html(G, href_for(root)) == draw.full_html(G, href_for(root))
    assert draw.neighbourhood_svg(G, "b", href_for(root)) == draw.neighbourhood_svg(
        G, "b", href_for(root)
    )


def test_every_node_links_to_an_existing_page(root: Path, G):
    notes = root / "notes"
    for svg in (
        draw.full_svg(G, href_for(root)),
        draw.mini_svg(G, href_for(root)),
        draw.neighbourhood_svg(G, "b", href_for(root)),
    ):
        links = nodes_of(parse(svg))
        assert links
        for cid, a in links.items():
            assert (notes / a.get("href")).is_file(), a.get("href")
            assert a.get("href") == f"papers/{cid}.md"
            assert a.find(f"{SVG}title").text.startswith(G.nodes[cid]["title"])
    assert set(nodes_of(parse(draw.full_svg(G, href_for(root))))) == set(G.nodes)


def test_full_drawing_reads_left_to_right_in_time(G, root: Path):
    links = nodes_of(parse(draw.full_svg(G, href_for(root))))
    x = {cid: float(a.find(f"{SVG}circle").get("cx")) for cid, a in links.items()}
    for u in G:
        for v in G:
            yu, yv = G.nodes[u]["year"], G.nodes[v]["year"]
            if yu < yv:
                assert x[u] < x[v]
            elif yu == yv:
                assert x[u] == x[v]


def test_nodes_carry_filter_data(G, root: Path):
    a = nodes_of(parse(draw.full_svg(G, href_for(root))))["e"]
    assert a.get("data-collections") == "core later"
    assert a.get("data-tags") == "efficiency"
    assert a.get("data-year") == "2020"
    edges = {
        (p.get("data-source"), p.get("data-target")): p.get("class")
        for p in parse(draw.full_svg(G, href_for(root))).iter(f"{SVG}path")
        if p.get("data-source")
    }
    assert "rg-cites" in edges["e", "c"] and "rg-mentions" in edges["e", "c"]
    assert "rg-cites" not in edges["e", "b"]
    assert len(edges) == 7  # each linked pair drawn once


def test_full_html_has_the_filters_and_parses(G, root: Path):
    html = draw.full_html(G, href_for(root))
    el = parse(html)
    selects = {s.get("data-rg-filter"): s for s in el.iter("select")}
    assert set(selects) == {"collections", "tags"}
    values = [o.get("value") for o in selects["collections"].iter("option")]
    assert values == ["", "core", "later"]
    labels = [o.text for o in selects["collections"].iter("option")]
    assert labels[1:] == ["Core papers (3)", "Later & more (2)"]
    assert "\n\n" not in html  # Markdown would end a raw HTML block at a blank line
    assert "<script" not in html and " src=" not in html  # our own graph.js, loaded by the site


def test_neighbourhood_puts_cited_left_and_citing_right(G, root: Path):
    links = nodes_of(parse(draw.neighbourhood_svg(G, "b", href_for(root))))
    x = {cid: float(a.find(f"{SVG}circle").get("cx")) for cid, a in links.items()}
    assert set(x) == {"a", "b", "c", "d"}  # e only mentions b: not a citation
    assert x["a"] < x["b"] < x["c"] == x["d"]
    lone = parse(draw.neighbourhood_svg(G, "f", href_for(root)))
    assert set(nodes_of(lone)) == {"f"}
    with pytest.raises(KeyError):
        draw.neighbourhood_svg(G, "nope", href_for(root))


def test_many_neighbours_are_counted_not_drawn(root: Path):
    for i in range(20):
        write_card(root, f"n{i:02d}", 2021, ["a"], ["attention"])
    G = build_graph(cards.load(root), root / "results", reproductions={})
    svg = draw.neighbourhood_svg(G, "a", href_for(root))
    assert len(nodes_of(parse(svg))) == 1 + draw.MAX_SIDE - 1
    assert "+11 more" in svg  # 22 citing cards, 11 drawn


def test_titles_are_escaped(root: Path):
    p = root / "notes" / "papers" / "a.md"
    p.write_text(p.read_text().replace('"Paper A: A Study of a"', '"<b>A & B</b>: \\"q\\""'))
    G = build_graph(cards.load(root), root / "results", reproductions={})
    svg = draw.full_svg(G, lambda cid: f"x?id={cid}&k=1")
    el = parse(svg)
    assert nodes_of(el)["a"].find(f"{SVG}title").text.startswith('<b>A & B</b>: "q"')
    assert nodes_of(el)["a"].get("href") == "x?id=a&k=1"


def test_drawing_accepts_a_knowledge_base(root: Path, monkeypatch):
    monkeypatch.setenv("REPRO_RESULTS", str(root / "results"))
    kb = cards.load(root)
    G = build_graph(kb, root / "results")
    assert draw.full_svg(kb, href_for(root)) == draw.full_svg(G, href_for(root))


def test_layout_keeps_order_and_gap():
    assert draw._spaced_fit([0.0, 0.0, 0.0], [1.0, 1.0, 1.0], 10.0) == [-10.0, 0.0, 10.0]
    ys = draw._spaced_fit([5.0, 100.0, -40.0, 300.0], [1.0, 1.0, 1.0, 0.05], 26.0)
    assert all(b - a >= 26.0 - 1e-9 for a, b in zip(ys, ys[1:]))


def test_graph_code_never_imports_torch(root: Path):
    code = (
        "import sys; from pathlib import Path; from repro import cards; "
        "from repro.graph import build, checks, draw, export, analyse, cli; "
        f"kb = cards.load(Path({str(root)!r})); G = build.build_graph(kb); "
        "checks.run_checks(kb); draw.full_html(G, str); draw.neighbourhood_svg(G, 'b', str); "
        "analyse.stats(G); assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
