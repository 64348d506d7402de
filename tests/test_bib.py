"""papers.bib: written through pybtex, parsed back, every LaTeX special character escaped."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from conftest import REPO
from pybtex.database import parse_string

from repro import bib, cards

# A character LaTeX treats specially, not preceded by a backslash. Math mode is ours only as
# latexcodec writes a symbol: µ becomes {$\mu$}, which is removed before the scan.
_RAW = re.compile(r"(?<!\\)[&%#_^~$]")
_SYMBOL = re.compile(r"\{\$\\[a-zA-Z]+\$\}")


def _meta(**kw):
    base = dict(
        title="A Title",
        authors=["Ada Lovelace"],
        year=2020,
        venue=None,
        arxiv=None,
        url="https://example.org/paper_1.pdf?a=1&b=2",
    )
    return SimpleNamespace(**{**base, **kw})


def _unescaped(value: str) -> list[str]:
    return [m.group(0) for m in _RAW.finditer(_SYMBOL.sub("", value))]


def test_every_special_character_is_escaped_and_parses_back():
    title = 'Costs & Benefits: 50% of #1 a_b ~x^2 $5 {braces} \\path "quoted" Ré µP 16×16 — Ł'
    text = bib.to_bibtex([_meta(title=title, authors=["Łukasz Kaiser", "Christopher Ré"])])
    data = parse_string(text, "bibtex")
    (entry,) = data.entries.values()
    assert entry.type == "misc"
    t = entry.fields["title"]
    assert _unescaped(t) == [], t
    for piece in (r"\&", r"50\%", r"\#1", r"a\_b", r"\textasciitilde{}", r"\textasciicircum{}"):
        assert piece in t
    assert r"\$5" in t and r"\{braces\}" in t and r"\textbackslash{}path" in t
    assert r"R{\'e}" in t and r"{$\mu$}P" in t and r"{\L}" in t
    # accented letters stay inside one name token
    names = [str(p) for p in entry.persons["author"]]
    assert names == [r"Kaiser, {\L}ukasz", r"R{\'e}, Christopher"]
    # verbatim fields are left alone
    assert entry.fields["url"] == "https://example.org/paper_1.pdf?a=1&b=2"


@pytest.mark.parametrize(
    ("venue", "kind", "field"),
    [
        ("NeurIPS 2022", "inproceedings", "booktitle"),
        ("Findings of EMNLP 2023", "inproceedings", "booktitle"),
        ("Neural Computation 4(1), 1992", "article", "journal"),
        ("IEEE TPAMI 2024", "article", "journal"),
        ("TMLR 2022", "article", "journal"),
        ("OpenAI technical report", "techreport", "institution"),
        (None, "misc", None),
    ],
)
def test_entry_type_follows_the_venue(venue, kind, field):
    entry = bib.card_entry(_meta(venue=venue, arxiv="2205.14135", url=None))
    assert entry.type == kind
    if field:
        assert field in entry.fields
    assert entry.fields["eprint"] == "2205.14135"


def test_the_knowledge_base_bib_parses_back_with_every_card_escaped():
    kb = cards.load(REPO)
    text = bib.to_bibtex(c.meta for c in kb.cards.values())
    data = parse_string(text, "bibtex")
    assert len(data.entries) == len(kb.cards)
    bad = {}
    for key, entry in data.entries.items():
        for name, value in entry.fields.items():
            if name.lower() in bib.VERBATIM:
                continue
            if _unescaped(value):
                bad[f"{key}.{name}"] = value
        for person in entry.persons.get("author", []):
            if _unescaped(str(person)):
                bad[f"{key}.author"] = str(person)
    assert bad == {}
    t3 = next(e for e in data.entries.values() if e.fields["title"].startswith("{T3"))
    assert r"Tracking \& Triggering" in t3.fields["title"] and t3.type == "inproceedings"
