"""What the site hook renders, checked without running MkDocs."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from conftest import REPO, write_card

from repro import cards, site


def _state(root: Path, monkeypatch):
    monkeypatch.setenv("REPRO_PAPERS", "fakepapers")
    from repro import registry

    registry.discover.cache_clear()
    site._STATE.clear()
    site._STATE.update(site.load_state(root))
    return site._STATE


def test_header_escapes_metadata(kb_root):
    write_card(kb_root, "xss-title", title="Attention <img src=x onerror=alert(1)>")
    card = cards.load(kb_root).cards["xss-title"]
    header = site.card_header(card)
    visible, bibtex_block = header.split('??? quote "BibTeX"')
    assert "<img" not in visible
    assert "&lt;img src=x onerror=alert(1)&gt;" in visible
    assert "```bibtex" in bibtex_block  # inside a code block the highlighter escapes it


def test_bibtex_entry(kb_root):
    card = cards.load(kb_root).cards["bert"]
    bib = site.bibtex(card)
    assert bib.startswith("@misc{lovelace2018paper,")
    assert "eprint        = {2001.00001}" in bib


def test_card_page_shows_claims_and_links(fake_repros, monkeypatch):
    from repro import cli

    cli.main(["run", "fake-good", "--no-progress"])
    _state(fake_repros, monkeypatch)
    page = site.render_card("Notes here.", "fake-good")
    assert "| the value is at least one | §1 | 1 | 3 |" in page
    assert "verdict-reproduced" in page
    assert "repro run fake-good" in page
    page = site.render_card("Notes.", "transformer")
    assert "No reproduction checks this paper yet" in page
    assert "**Cited by:** [A Paper Title](bert.md) (2018)" in page


def test_truncated_results_file_means_no_result(fake_repros, monkeypatch):
    path = fake_repros / "results" / "fake-good" / "quick.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"claims": [')
    st = _state(fake_repros, monkeypatch)
    assert any("unreadable results file" in w for w in st["warnings"])
    page = site.render_card("Notes.", "fake-good")
    assert "has not been run yet" in page


def test_results_values_are_escaped(fake_repros, monkeypatch):
    path = fake_repros / "results" / "fake-good" / "quick.json"
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps(
            {
                "preset": "quick",
                "status": "ok",
                "claims": [
                    {
                        "id": "value",
                        "verdict": "reproduced",
                        "statement": "<script>x</script>",
                        "measured": "<b>|</b>",
                    }
                ],
            }
        )
    )
    _state(fake_repros, monkeypatch)
    page = site.render_card("Notes.", "fake-good")
    assert "<script>" not in page and "<b>" not in page


def test_tags_vocabulary_equals_mkdocs_tags_allowed():
    vocab = yaml.safe_load((REPO / "notes" / "tags.yml").read_text())
    text = (REPO / "mkdocs.yml").read_text()
    block = text.split("tags_allowed:")[1].split("\n  - ")[0]
    allowed = [line.strip()[2:] for line in block.splitlines() if line.strip().startswith("- ")]
    assert allowed == list(vocab)
