"""BibTeX entries for the cards, written through pybtex with LaTeX escaping.

Card metadata is plain text, so every character LaTeX treats specially is escaped: the ten
ASCII specials (``& % $ # _ { } ~ ^ \\``) by hand, anything beyond ASCII through latexcodec
(``é`` → ``{\\'e}``, ``µ`` → ``{$\\mu$}``), braced so that BibTeX keeps accented letters inside
a name. The entry type follows the venue: ``@article`` for a journal, ``@inproceedings`` for a
conference or workshop, ``@techreport`` for a technical report, ``@misc`` for a paper known only
from arXiv or a web page. URLs and arXiv ids are verbatim fields and are left as they are.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable

import latexcodec  # noqa: F401  (registers the "ulatex" codec)
from pybtex.database import BibliographyData, Entry, Person
from pybtex.database.output.bibtex import Writer

_ASCII = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "%": r"\%",
    "#": r"\#",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    '"': "{''}",
}
# Fields whose value is verbatim (a URL, an identifier): not escaped.
VERBATIM = ("url", "eprint", "archiveprefix", "doi")

JOURNAL = re.compile(
    r"\b(journal|transactions|tpami|tmlr|nature|science|neural computation|computing surveys|"
    r"jmlr|letters|review)\b",
    re.I,
)
REPORT = re.compile(r"\b(technical report|tech\.? report|white ?paper)\b", re.I)


def latex_escape(text: str) -> str:
    """Plain text as LaTeX source that prints it."""
    out = []
    for ch in text:
        if ch in _ASCII:
            out.append(_ASCII[ch])
        elif ord(ch) < 128:
            out.append(ch)
        else:
            enc = codecs.encode(ch, "ulatex").strip()
            if enc == ch:  # latexcodec knows no LaTeX for it: keep it (needs a UTF-8 engine)
                out.append(ch)
            elif enc.startswith("\\") or enc.startswith("$"):
                out.append("{" + enc + "}")
            else:  # dashes and quotes: plain ASCII ligatures such as --- or ``
                out.append(enc)
    return "".join(out)


def entry_type(venue: str | None) -> str:
    if not venue:
        return "misc"
    if REPORT.search(venue):
        return "techreport"
    if JOURNAL.search(venue):
        return "article"
    return "inproceedings"


def cite_key(meta) -> str:
    first = re.sub(r"[^a-z]", "", meta.authors[0].split()[-1].lower()) or "anon"
    word = next((w for w in re.findall(r"[A-Za-z]+", meta.title) if len(w) > 3), "paper")
    return f"{first}{meta.year}{word.lower()}"


def card_entry(meta) -> Entry:
    kind = entry_type(meta.venue)
    fields: dict[str, str] = {"title": "{" + latex_escape(meta.title) + "}", "year": str(meta.year)}
    if kind == "article":
        fields["journal"] = latex_escape(meta.venue)
    elif kind == "inproceedings":
        fields["booktitle"] = latex_escape(meta.venue)
    elif kind == "techreport":
        fields["institution"] = latex_escape(REPORT.sub("", meta.venue).strip(" ,") or meta.venue)
    if meta.arxiv:
        fields["eprint"] = meta.arxiv
        fields["archivePrefix"] = "arXiv"
        fields["url"] = f"https://arxiv.org/abs/{meta.arxiv}"
    elif meta.url:
        fields["url"] = meta.url
    if kind == "misc" and meta.arxiv:
        fields["howpublished"] = f"arXiv preprint arXiv:{meta.arxiv}"
    persons = {"author": [Person(latex_escape(a)) for a in meta.authors]}
    return Entry(kind, fields=fields, persons=persons)


def bibliography(metas: Iterable) -> BibliographyData:
    """Every card once; a key that two cards would share gets a letter (``…a``, ``…b``)."""
    data = BibliographyData()
    metas = list(metas)
    base = [cite_key(m) for m in metas]
    seen: dict[str, int] = {}
    for m, key in zip(metas, base):
        if base.count(key) > 1:
            seen[key] = seen.get(key, 0) + 1
            key += "abcdefghijklmnopqrstuvwxyz"[seen[key] - 1]
        data.add_entry(key, card_entry(m))
    return data


class _EscapedWriter(Writer):
    """pybtex's BibTeX writer for values that ``card_entry`` has already escaped: its own
    encoding step would escape them a second time (``\\&`` → ``\\\\&``) and would touch the
    verbatim URL fields."""

    def _encode(self, text):
        return text


def to_bibtex(metas: Iterable) -> str:
    return _EscapedWriter().to_string(bibliography(metas))
