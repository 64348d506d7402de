"""What the site hook renders, checked without running MkDocs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
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
    assert 'eprint = "2001.00001"' in bib


def test_card_page_shows_claims_and_links(fake_repros, monkeypatch):
    from repro import cli

    cli.main(["run", "fake-good", "--no-progress"])
    _state(fake_repros, monkeypatch)
    page = site.render_card("Notes here.", "fake-good")
    assert (
        '<td data-label="claim">the value is at least one<br><small class="claim-src">§1 · ' in page
    )
    assert (
        '<td data-label="paper">1</td><td data-label="ours"><span class="ours-est">3.01'
        '</span> <span class="ours-ci">[2.985, 3.035] n=3</span>' in page
    )
    assert 'title="rule: ≥ 1' in page and "rule ≥ 1" in page  # tooltip and the list below
    # the verdict strip sits under the title, before the authors line
    strip = page.index('class="verdict-strip"')
    assert page.index("# ") < strip < page.index('class="card-meta"')
    assert "✔ 1 reproduced" in page and "checks</abbr> 1/1 pass" in page
    assert 'href="#what-we-measured"' in page
    # the forest plot draws the finding's interval against the accepted region (≥ 1)
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="forest"' in page
    assert 'class="forest-accept"' in page and 'data-claim="value"' in page
    assert "### Findings" in page and "### Implementation checks" in page
    assert "verdict-reproduced" in page and "verdict-pass" in page
    assert "1 finding: 1 reproduced, 0 not, 0 inconclusive · 1 implementation check: 1 pass" in page
    assert "repro run fake-good" in page
    page = site.render_card("Notes.", "transformer")
    assert "No reproduction checks this paper yet" in page
    assert 'class="verdict-strip vs-empty"' in page and 'class="forest"' not in page
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


def test_card_quotes_follow_the_results_file(fake_repros, monkeypatch):
    """A card's {{ result: ... }} reference is expanded from the results at build time, so
    changing the results file changes the page."""
    from repro import cli

    cli.main(["run", "fake-good", "--no-progress"])
    _state(fake_repros, monkeypatch)
    md = "We measured {{ result: fake-good/quick #value }}, verdict {{ result: fake-good/quick #value.verdict }}; error {{ result: fake-good/quick @error | .3f }}."
    page = site.expand_quotes(md, "notes/papers/fake-good.md")
    assert "We measured 3.01 (95% CI [" in page and "n = 3)" in page
    assert "verdict reproduced" in page and "error 0.010." in page
    path = fake_repros / "results" / "fake-good" / "quick.json"
    data = json.loads(path.read_text())
    data["metrics"]["value"] = [0.2, 0.3, 0.25]
    data["metrics"]["error"] = 0.25
    from repro.registry import resolve
    from repro.results import rejudge

    path.write_text(json.dumps(rejudge(resolve("fake-good"), data)))
    _state(fake_repros, monkeypatch)
    page = site.expand_quotes(md, "notes/papers/fake-good.md")
    assert "We measured 0.25 (95% CI [" in page
    assert "verdict not reproduced" in page and "error 0.250." in page


def test_a_quote_of_a_missing_claim_fails_the_build(fake_repros, monkeypatch):
    from mkdocs.exceptions import PluginError

    from repro import cli

    cli.main(["run", "fake-good", "--no-progress"])
    _state(fake_repros, monkeypatch)
    with pytest.raises(PluginError, match="has no claim 'valu'; claims: small, value"):
        site.expand_quotes("{{ result: fake-good/quick #valu }}", "notes/papers/x.md")
    with pytest.raises(PluginError, match="no results file results/fake-good/full.json"):
        site.expand_quotes("{{ result: fake-good/full #value }}", "notes/papers/x.md")


def test_notebook_tex_becomes_mathml_and_raw_tex_is_found():
    page = (
        "<p>For scores $s_1, \\dots, s_N$, it costs $5 or $10, and \\(a^2\\).</p>"
        "<div>$$\\ell = \\sum_j e^{s_j - m}$$</div>"
        "<pre><code>x = '$a_1$'</code></pre><script>var t = '${X}$';</script>"
    )
    assert len(site.raw_tex(page)) == 3  # the two inline forms and the display block
    out = site.render_dollar_math(page)
    assert out.count("<math") == 3 and 'display="block"' in out
    assert site.raw_tex(out) == []
    assert "costs $5 or $10" in out  # prices are not maths
    assert "<code>x = '$a_1$'</code>" in out and "'${X}$'" in out  # code and scripts untouched


def test_every_card_has_a_short_name_used_by_the_drawings():
    kb = cards.load(REPO)
    assert [c.id for c in kb.cards.values() if not c.meta.short] == []
    from repro.graph import draw
    from repro.graph.build import build_graph

    G = build_graph(kb)
    html_text = draw.full_html(G, lambda cid: f"papers/{cid}/")
    assert ">GPT-1</text>" in html_text and ">Kaplan scaling laws</text>" in html_text
    assert ">gpt</text>" not in html_text  # no slugs as labels
    assert 'class="rg-panel"' in html_text and 'data-verdicts="' in html_text


def test_claim_rows_name_their_code_at_the_results_commit(fake_repros, monkeypatch):
    from repro import cli

    cli.main(["run", "fake-good", "--no-progress"])
    st = _state(fake_repros, monkeypatch)
    rep, _results, best = st["by_card"]["fake-good"]
    best["commit"] = "0123456789abcdef0123"  # the fake run is not in a git checkout
    folder = rep.module.replace(".", "/")
    page = site.render_card("Notes.", "fake-good")
    assert f"code: <code>{folder}/</code>@0123456789</span>" in page
    st["repo_url"] = "https://example.org/team/repro/"
    page = site.render_card("Notes.", "fake-good")
    assert f'href="https://example.org/team/repro/tree/{best["commit"]}/{folder}"' in page
