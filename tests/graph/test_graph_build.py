"""The citation graph on cards with a known structure: edges, checks, analyses and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pytest
from graph_kb import write_card, write_kb, write_result

from repro import cards
from repro.graph import analyse, checks
from repro.graph.build import CITES, MENTIONS, build_graph, citations, edge_kinds
from repro.graph.cli import main as graph_main


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_kb(tmp_path)


@pytest.fixture
def G(root: Path):
    return build_graph(cards.load(root), root / "results", reproductions={})


# --------------------------------------------------------------------------- build
def test_nodes_carry_card_metadata(G):
    assert sorted(G.nodes) == ["a", "b", "c", "d", "e", "f"]
    e = G.nodes["e"]
    assert e["year"] == 2020 and e["title"] == "Paper E: A Study of e"
    assert e["tags"] == ["efficiency"]
    assert e["collections"] == ["core", "later"]
    assert G.nodes["f"]["collections"] == ["later"]
    assert G.nodes["c"]["collections"] == []
    assert G.graph["collections"] == {"core": "Core papers", "later": "Later & more"}
    assert e["repro"] is None and e["verdict"] is None


def test_edge_kinds_are_kept_apart(G):
    cites = sorted((u, v) for u, v, k in G.edges(keys=True) if k == CITES)
    mentions = sorted((u, v) for u, v, k in G.edges(keys=True) if k == MENTIONS)
    assert cites == [("b", "a"), ("c", "b"), ("d", "a"), ("d", "b"), ("e", "c"), ("e", "d")]
    # Links in inline code and fenced code are examples, not mentions.
    assert mentions == [("e", "b"), ("e", "c")]
    assert edge_kinds(G, "e", "c") == [CITES, MENTIONS]
    assert edge_kinds(G, "e", "b") == [MENTIONS]
    assert G.edges["e", "c", MENTIONS]["kind"] == MENTIONS
    assert isinstance(G, nx.DiGraph)  # a MultiDiGraph is one
    assert sorted(citations(G).edges) == cites


def test_link_forms_that_name_a_card(root: Path):
    from repro.graph.build import link_targets

    notes = (
        'Inline [one](a.md), [two](<./b.md> "title"), [three](../papers/c.md#x).\n'
        "[ref]: d.md\n"
        "Not cards: [web](https://x.org/a.md), [page](../collections/core.md), ![fig](e.png).\n"
    )
    card = write_card(root, "x", 2021, ["a"], ["attention"], notes=notes)
    kb = cards.load(root)
    assert list(link_targets(kb.cards["x"])) == [("a", 10), ("b", 10), ("c", 10), ("d", 11)]
    assert card.exists()


def test_reproduction_status_from_results(root: Path):
    write_card(root, "a", 2014, [], ["attention"], extra="repro: rep-a\n")
    results = root / "results"
    write_result(results, "rep-b", ["reproduced", "not reproduced", "not checked at this scale"])
    write_result(results, "rep-c", ["reproduced", "reproduced"])
    write_result(results, "rep-d", ["not reproduced"], status="crashed")
    G = build_graph(
        cards.load(root), results, reproductions={"b": "rep-b", "c": "rep-c", "d": "rep-d"}
    )
    a, b, c, d = (G.nodes[x] for x in "abcd")
    assert (a["repro"], a["status"], a["verdict"]) == ("rep-a", "not run", None)
    # the node's verdict is its headline finding's (the first declared), from one vocabulary
    assert (b["repro"], b["status"], b["preset"], b["verdict"]) == (
        "rep-b",
        "ok",
        "quick",
        "reproduced",
    )
    assert (b["reproduced"], b["not_reproduced"], b["not_checked"]) == (1, 1, 1)
    assert c["verdict"] == "reproduced"
    assert (d["status"], d["verdict"]) == ("crashed", None)


# --------------------------------------------------------------------------- checks
def test_clean_cards_give_one_warning_for_the_loner(root: Path):
    kb = cards.load(root)
    assert kb.errors == []
    errors, warnings = checks.run_checks(kb)
    assert errors == []
    assert warnings == [
        "notes/papers/f.md:8: warning: cites: no citation or link to or from any other card; "
        "list the cards it cites in `cites:` or link related cards in the notes"
    ]


def test_dangling_and_later_citations(root: Path):
    write_card(root, "x", 2015, ["bb", "c"], ["attention"])
    kb = cards.load(root)
    errors, _ = checks.run_checks(kb, skip_known=False)
    assert errors == [
        "notes/papers/x.md:8: cites: 'bb' is no card id; did you mean 'b'?",
        "notes/papers/x.md:8: cites: 'c' is from 2018, later than this paper (2015); "
        "a paper cannot cite a later one",
    ]
    # repro.cards reports both already: `repro check` must not print them twice.
    assert checks.run_checks(kb)[0] == []
    assert all(e in {str(p) for p in kb.errors} for e in errors)


def test_dangling_link_in_notes(root: Path):
    write_card(root, "x", 2019, ["a"], ["attention"], notes="Intro.\n\nSee [it](../papers/bb.md).")
    errors, _ = checks.run_checks(cards.load(root))
    assert errors == [
        "notes/papers/x.md:12: notes: the link to 'bb.md' names no card; did you mean 'b'?"
    ]


def test_citation_cycle_is_reported(root: Path):
    write_card(root, "g", 2019, ["h", "a"], ["attention"])
    write_card(root, "h", 2019, ["g"], ["attention"])
    kb = cards.load(root)
    assert kb.errors == []  # same-year citations are allowed one by one
    errors, warnings = checks.run_checks(kb)
    assert errors == []
    assert "notes/papers/g.md:8: warning: cites: citation cycle g -> h -> g (all 2019)" in warnings


def test_longer_cycle_names_the_whole_group(root: Path):
    write_card(root, "g", 2019, ["h"], ["attention"])
    write_card(root, "h", 2019, ["i"], ["attention"])
    write_card(root, "i", 2019, ["g", "h"], ["attention"])
    (cyc,) = [w for w in checks.run_checks(cards.load(root))[1] if "cycle" in w]
    assert "citation cycle g -> h -> i -> g (all 2019)" in cyc


def test_repro_check_prints_each_problem_once(root: Path, monkeypatch, capsys):
    from repro import cli

    write_card(root, "x", 2015, ["bb"], ["attention"])
    write_card(root, "g", 2019, ["h"], ["attention"])
    write_card(root, "h", 2019, ["g"], ["attention"])
    monkeypatch.setenv("REPRO_ROOT", str(root))
    assert cli.main(["check"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert sum("'bb' is no card id" in line for line in out) == 1
    assert sum("citation cycle g -> h -> g" in line for line in out) == 1
    assert sum("f.md:8: warning: cites: no citation" in line for line in out) == 1


# --------------------------------------------------------------------------- analyses
def test_paths_from_newer_back_to_older(G):
    res = analyse.path(G, "a", "e")
    assert res["from"] == "e" and res["to"] == "a" and not res["swapped"]
    assert res["chains"] == [["e", "d", "a"], ["e", "c", "b", "a"], ["e", "d", "b", "a"]]
    assert res["shortest"] == 2 and res["count"] == 3
    # Given the other way round, the answer is the same and says so.
    back = analyse.path(G, "e", "a")
    assert back["swapped"] and back["chains"] == res["chains"]
    assert analyse.path(G, "a", "e", limit=1)["chains"] == [["e", "d", "a"]]


def test_no_chain_between_siblings_but_a_connection(G):
    res = analyse.path(G, "c", "d")
    assert res["chains"] == [] and res["count"] == 0
    assert res["linked"] in (["d", "b", "c"], ["d", "e", "c"])


def test_lineage(G):
    res = analyse.lineage(G, "b")
    assert [(r["id"], r["steps"]) for r in res["ancestors"]] == [("a", 1)]
    assert [(r["id"], r["year"], r["steps"]) for r in res["descendants"]] == [
        ("c", 2018, 1),
        ("d", 2018, 1),
        ("e", 2020, 2),
    ]
    assert analyse.lineage(G, "f") == {
        "card": {"id": "f", "year": 2020, "title": "Paper F: A Study of f"},
        "ancestors": [],
        "descendants": [],
    }


def test_pagerank_order_and_peer(G):
    D = citations(G)
    pr = analyse.pagerank(D)
    assert abs(sum(pr.values()) - 1) < 1e-9
    # a is cited by b (its only citation) and d; b by c and d; c and d by half of e each.
    assert sorted(pr, key=lambda v: (-pr[v], v)) == ["a", "b", "c", "d", "e", "f"]
    assert pr["a"] > pr["b"] > pr["c"] > pr["e"]
    assert pr["c"] == pytest.approx(pr["d"]) and pr["e"] == pytest.approx(pr["f"])
    # networkx's own dense reference (networkx.pagerank itself needs scipy).
    from networkx.algorithms.link_analysis import pagerank_alg

    peer = getattr(pagerank_alg, "_pagerank_numpy", None)
    if peer is None:
        pytest.skip("this networkx has no _pagerank_numpy")
    ref = peer(D, alpha=0.85)
    assert all(pr[v] == pytest.approx(ref[v], abs=1e-9) for v in D)


def test_stats(G):
    s = analyse.stats(G)
    assert s["nodes"] == 6
    assert s["edges"] == {"cites": 6, "mentions": 2, "pairs with both": 1, "total": 8}
    assert s["density"]["cites"] == pytest.approx(6 / 30)
    assert s["density"]["any"] == pytest.approx(7 / 30)
    assert s["weakly_connected_components"] == {"count": 2, "sizes": [5, 1], "isolated": ["f"]}
    assert [(r["id"], r["cited_by"]) for r in s["most_cited"]] == [
        ("a", 2),
        ("b", 2),
        ("c", 1),
        ("d", 1),
    ]
    assert [r["id"] for r in s["pagerank"]][:2] == ["a", "b"]
    core = next(c for c in s["collections"] if c["id"] == "core")
    assert core == {
        "id": "core",
        "title": "Core papers",
        "members": 3,
        "citations_inside": 1,  # b -> a
        "citations_to_outside": 2,  # e -> c, e -> d
        "citations_from_outside": 3,  # c -> b, d -> b, d -> a
        "most_cited": "a",
        "top_pagerank": "a",
    }


# --------------------------------------------------------------------------- command line
def run(root: Path, monkeypatch, capsys, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setenv("REPRO_ROOT", str(root))
    monkeypatch.setenv("REPRO_RESULTS", str(root / "results"))
    code = graph_main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_path_and_json(root, monkeypatch, capsys):
    code, out, _ = run(root, monkeypatch, capsys, "path", "a", "e")
    assert code == 0
    assert "3 citation chain(s) from e back to a, shortest 2 step(s)" in out
    assert "e (2020) -> d (2018) -> a (2014)" in out
    code, out, _ = run(root, monkeypatch, capsys, "path", "a", "e", "--json")
    assert code == 0 and json.loads(out)["chains"][0] == ["e", "d", "a"]


def test_cli_unknown_id_suggests(root, monkeypatch, capsys):
    write_card(root, "flash-attention", 2022, ["a"], ["attention"])
    code, _, err = run(root, monkeypatch, capsys, "lineage", "flash-atention")
    assert code == 2
    assert "no card 'flash-atention'; did you mean 'flash-attention'?" in err
    code, _, err = run(root, monkeypatch, capsys, "path", "a", "flash-attn")
    assert code == 2 and "did you mean 'flash-attention'?" in err
    code, _, err = run(root, monkeypatch, capsys, "statz")
    assert code == 2 and "invalid choice" in err


def test_cli_stats_lineage_export(root, monkeypatch, capsys):
    code, out, _ = run(root, monkeypatch, capsys, "stats")
    assert code == 0 and "6 cards (2014-2020), 6 citations, 2 links" in out
    code, out, _ = run(root, monkeypatch, capsys, "stats", "--json")
    assert json.loads(out)["nodes"] == 6
    code, out, _ = run(root, monkeypatch, capsys, "lineage", "b", "--json")
    assert [r["id"] for r in json.loads(out)["descendants"]] == ["c", "d", "e"]
    code, out, _ = run(root, monkeypatch, capsys, "export", "--out", str(root / "x"), "--json")
    assert code == 0
    assert sorted(Path(p).name for p in json.loads(out)["files"]) == ["graph.graphml", "graph.json"]


def test_repro_graph_dispatches(root, monkeypatch, capsys):
    from repro import cli

    monkeypatch.setenv("REPRO_ROOT", str(root))
    assert cli.main(["graph", "path", "b", "e", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 2


def test_cli_without_a_command_prints_help(capsys):
    assert graph_main([]) == 0
    assert "stats" in capsys.readouterr().out


def test_bench_runs_on_made_up_cards(capsys):
    assert graph_main(["bench", "--cards", "25", "--repeat", "1", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["cards"] == 25 and res["edges"] > 0 and res["errors"] == 0
