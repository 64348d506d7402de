"""Contributions by pull request: scaffolding, schema, and the hardening around them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from repro import cards, cli, scaffold

ATOM = (Path(__file__).parent / "data" / "arxiv_2205.14135.xml").read_text()


def test_parse_recorded_arxiv_response():
    (meta,) = scaffold.parse_atom(ATOM)
    assert meta.arxiv == "2205.14135"
    assert meta.title == (
        "FlashAttention: Fast and Memory-Efficient Exact Attention with IO-Awareness"
    )
    assert meta.authors == [
        "Tri Dao",
        "Daniel Y. Fu",
        "Stefano Ermon",
        "Atri Rudra",
        "Christopher Ré",
    ]
    assert meta.year == 2022


def test_query_urls():
    assert "id_list=2205.14135" in scaffold.query_url("2205.14135")
    assert "id_list=2205.14135" in scaffold.query_url("arXiv:2205.14135v2")
    assert "search_query" in scaffold.query_url("Flash attention IO-aware")


def test_slug():
    assert (
        scaffold.slug("FlashAttention: Fast and Memory-Efficient Exact Attention")
        == "flash-attention"
    )
    assert scaffold.slug("Attention Is All You Need") == "attention-is-all-you-need"


def test_new_from_recorded_response(kb_root, monkeypatch, capsys):
    monkeypatch.setenv("REPRO_ROOT", str(kb_root))
    monkeypatch.setattr(
        scaffold,
        "fetch",
        lambda q: (scaffold.parse_atom(ATOM)[0], "metadata from arXiv:2205.14135"),
    )
    assert cli.main(["new", "2205.14135"]) == 0
    path = kb_root / "notes" / "papers" / "flash-attention.md"
    kb = cards.load(kb_root)
    assert [str(p) for p in kb.errors] == []  # a fetched card validates as written
    card = kb.cards["flash-attention"]
    assert card.meta.arxiv == "2205.14135" and card.meta.year == 2022
    assert "attention" in card.meta.tags
    assert "yaml-language-server: $schema=" in path.read_text()
    # a second time: the arXiv id is known, before any network call
    monkeypatch.setattr(scaffold, "fetch", lambda q: pytest.fail("fetched a known paper"))
    assert cli.main(["new", "arXiv:2205.14135v2"]) == 2
    err = capsys.readouterr().err
    assert "already in the knowledge base as notes/papers/flash-attention.md" in err
    # and by title: the card file itself is not overwritten
    monkeypatch.setattr(scaffold, "fetch", lambda q: (scaffold.parse_atom(ATOM)[0], "recorded"))
    assert cli.main(["new", "FlashAttention"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_new_offline_fallback_lists_fields_to_fill(kb_root, monkeypatch, capsys):
    monkeypatch.setenv("REPRO_ROOT", str(kb_root))
    assert cli.main(["new", "2205.14135", "--offline", "--id", "flash-attention"]) == 0
    out = capsys.readouterr().out
    assert "Fill in: title, authors, year" in out
    problems = [str(p) for p in cards.load(kb_root).errors]
    assert any("flash-attention.md" in p for p in problems)  # not valid until filled


def test_new_with_repro_passes_check(kb_root, monkeypatch, capsys, tmp_path):
    """The scaffolded reproduction registers, and its claims start as not checked."""
    monkeypatch.setenv("REPRO_ROOT", str(kb_root))
    monkeypatch.setattr(scaffold, "fetch", lambda q: (scaffold.parse_atom(ATOM)[0], "arXiv"))
    # scaffold into a throw-away package so the real repro/papers stays untouched
    pkg = tmp_path / "pkgroot" / "scaffolded"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    files = scaffold.repro_files("flash-attention", "flash_attention", "FlashAttention")
    for rel, text in files.items():
        if rel.startswith("repro/papers/"):
            target = pkg / rel.split("/", 2)[2]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path / "pkgroot"))
    monkeypatch.setenv("REPRO_PAPERS", "scaffolded")
    from repro import registry

    registry.discover.cache_clear()
    try:
        assert cli.main(["new", "2205.14135"]) == 0
        text = (kb_root / "notes" / "papers" / "flash-attention.md").read_text()
        (kb_root / "notes" / "papers" / "flash-attention.md").write_text(
            text.replace("cites: []", "cites: []\nrepro: flash-attention")
        )
        assert cli.main(["check"]) == 0, capsys.readouterr()
        assert cli.main(["run", "flash-attention", "--no-progress"]) == 0
        res = json.loads((kb_root / "results" / "flash-attention" / "quick.json").read_text())
        assert [c["verdict"] for c in res["claims"]] == ["not checked at this scale"]
    finally:
        registry.discover.cache_clear()


def test_committed_schema_is_current():
    committed = json.loads((REPO / "schema" / "card.schema.json").read_text())
    tags = yaml.safe_load((REPO / "notes" / "tags.yml").read_text())
    fresh = cards.card_json_schema(tags)
    for s in (committed, fresh):
        s["properties"]["year"].pop("maximum")  # moves with the calendar
    assert committed == fresh, "run `repro schema -o schema/card.schema.json`"


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "repro/cli.py", "..", "~"])
def test_cli_ids_resolve_only_through_the_registry(name, capsys):
    assert cli.main(["run", name, "--dry-run"]) == 2
    assert "no reproduction called" in capsys.readouterr().err
    assert cli.main(["show", name]) == 2


def test_pre_commit_config_is_local_and_runs_check():
    cfg = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    ids = {h["id"] for r in cfg["repos"] for h in r["hooks"]}
    assert {"ruff", "ruff-format", "repro-check"} <= ids


def test_workflows_are_safe_for_pull_requests():
    for wf in (REPO / ".github" / "workflows").glob("*.yml"):
        text = wf.read_text()
        data = yaml.safe_load(text)
        triggers = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` as true
        assert "pull_request_target" not in triggers, wf.name
        if wf.name == "ci.yml":
            assert "pull_request" in triggers
        assert data["permissions"] == {"contents": "read"}, wf.name
        assert "secrets." not in text, wf.name


def test_codebase_passes_ruff_lint_and_format():
    out = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "repro", "tests", "hooks"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout[-3000:]
    fmt = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "repro", "tests", "hooks"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, "run `ruff format`:\n" + fmt.stdout[-3000:]
