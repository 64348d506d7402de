"""``repro new <arXiv id | title>``: scaffold a card, and with ``--repro`` a reproduction.

Metadata comes from the arXiv API (Atom feed, parsed with the standard library). Offline, or
when arXiv does not know the paper, the card is written with the fields left to fill, and the
command says which. The new reproduction's claims start as "not checked at this scale" and the
skeleton passes ``repro check`` as soon as the card's fields are filled.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

API = "https://export.arxiv.org/api/query"
ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV_NS = "{http://arxiv.org/schemas/atom}"
ARXIV_ID = re.compile(
    r"^(?:arxiv:)?(\d{4}\.\d{4,5}|[a-z][a-z-]*(?:\.[A-Z]{2})?/\d{7})(v\d+)?$", re.I
)
STOP = {"a", "an", "the", "of", "for", "and", "on", "in", "to", "with", "via", "is", "are", "by"}


@dataclass
class PaperMeta:
    title: str = ""
    authors: list[str] = field(default_factory=list)
    year: int | None = None
    arxiv: str | None = None
    abstract: str = ""
    venue: str | None = None


def parse_atom(xml_text: str) -> list[PaperMeta]:
    """Entries of an arXiv API Atom response."""
    root = ET.fromstring(xml_text)
    out = []
    for entry in root.findall(f"{ATOM}entry"):
        raw_id = (entry.findtext(f"{ATOM}id") or "").strip()
        m = re.search(r"abs/(.+?)(v\d+)?$", raw_id)
        title = " ".join((entry.findtext(f"{ATOM}title") or "").split())
        if not m or not title or title.lower() == "error":
            continue
        published = (entry.findtext(f"{ATOM}published") or "")[:4]
        authors = [
            " ".join((a.findtext(f"{ATOM}name") or "").split())
            for a in entry.findall(f"{ATOM}author")
        ]
        journal = entry.findtext(f"{ARXIV_NS}journal_ref")
        out.append(
            PaperMeta(
                title=title,
                authors=[a for a in authors if a],
                year=int(published) if published.isdigit() else None,
                arxiv=m.group(1),
                abstract=" ".join((entry.findtext(f"{ATOM}summary") or "").split()),
                venue=" ".join(journal.split()) if journal else None,
            )
        )
    return out


def query_url(query: str) -> str:
    m = ARXIV_ID.match(query.strip())
    if m:
        return f"{API}?{urllib.parse.urlencode({'id_list': m.group(1)})}"
    words = " AND ".join(f'ti:"{w}"' for w in re.findall(r"[A-Za-z0-9]+", query)[:8])
    return f"{API}?{urllib.parse.urlencode({'search_query': words, 'max_results': 5})}"


def fetch(query: str, timeout: float = 10.0) -> tuple[PaperMeta | None, str]:
    """(metadata or None, a one-line account of what happened)."""
    url = query_url(query)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - fixed https host
            text = resp.read(2_000_000).decode("utf-8", errors="replace")
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        return (
            None,
            f"arXiv could not be reached ({getattr(e, 'reason', e)}); writing a card to fill",
        )
    try:
        entries = parse_atom(text)
    except ET.ParseError as e:
        return None, f"arXiv's answer did not parse ({e}); writing a card to fill"
    if not entries:
        return None, f"arXiv knows no paper for {query!r}; writing a card to fill"
    return entries[0], f"metadata from arXiv:{entries[0].arxiv}"


def slug(title: str) -> str:
    """A card id from a title: the part before a colon, or its first content words."""
    head = title.split(":")[0] if ":" in title and len(title.split(":")[0]) > 3 else title
    words = [w.lower() for w in re.findall(r"[A-Za-z0-9]+", head)]
    if len(words) > 5:
        words = [w for w in words if w not in STOP][:5]
    # CamelCase names (FlashAttention) read better split: flash-attention
    if len(words) == 1:
        parts = re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", head.strip())
        if len(parts) > 1:
            words = [p.lower() for p in parts]
    return "-".join(words) or "new-paper"


def suggest_tags(meta: PaperMeta, vocabulary: list[str]) -> list[str]:
    text = f"{meta.title} {meta.abstract}".lower()
    hits = []
    for tag in vocabulary:
        words = tag.replace("-", " ")
        if words in text or (tag.endswith("s") and words[:-1] in text):
            hits.append(tag)
    return hits[:4]


def yaml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def card_text(cid: str, meta: PaperMeta, tags: list[str], repro_id: str | None) -> str:
    title = yaml_str(meta.title) if meta.title else '""  # the paper title'
    lines = [
        "---",
        "# yaml-language-server: $schema=../../schema/card.schema.json",
        f"id: {cid}",
        f"title: {title}",
    ]
    if meta.authors:
        lines.append("authors: [" + ", ".join(yaml_str(a) for a in meta.authors) + "]")
    else:
        lines.append("authors: []  # in the paper's order")
    lines.append(f"year: {meta.year}" if meta.year else "year:  # first public version")
    if meta.venue:
        lines.append(f"venue: {yaml_str(meta.venue)}")
    if meta.arxiv:
        lines.append(f'arxiv: "{meta.arxiv}"')
    else:
        lines.append('arxiv: ""  # e.g. "2205.14135"; or use url: for papers not on arXiv')
    lines.append("tags: [" + ", ".join(tags) + "]  # from notes/tags.yml")
    lines.append("cites: []  # ids of cards this paper's reference list cites")
    head = (meta.title or "").split(":", 1)[0].strip()
    if head and len(head) <= 28:
        lines.append(f"short: {yaml_str(head)}  # the name drawings and lists use")
    else:
        lines.append(
            'short: ""  # the name drawings and lists use, e.g. "GPT-1" (28 chars at most)'
        )
    lines.append("# tldr: one line in your own words, shown under the title")
    if repro_id:
        lines.append(f"repro: {repro_id}")
    lines.append("---")
    body = textwrap.dedent("""
        In your own words (150-400 words): the problem, the idea, the key numbers with where
        they appear in the paper (Table/Figure/section), and what later work did with it.

        ## Reproduction

        What a reproduction here checks, or why none does.
        """)
    return "\n".join(lines) + "\n" + body


def repro_files(cid: str, module: str, title: str) -> dict[str, str]:
    init = f'''"""{title}.

Claims checked: (describe each, with where it is in the paper).
Left out, and why: ...
"""

from dataclasses import dataclass

from repro.claims import AtLeast, Claim, Reproduction, learned_gate


@dataclass(frozen=True)
class Config:
    steps: int = 100  # training steps (quick: all seeds together under 3 CPU-minutes)
    seeds: int = 3  # a finding is judged over seeds: 3 in quick, 5 in full


REPRO = Reproduction(
    id="{cid}",
    papers=("{cid}",),
    title={title!r},
    config=Config,
    presets={{"quick": {{}}, "full": {{"steps": 2000, "seeds": 5}}, "tiny": {{"steps": 2, "seeds": 1}}}},
    claims=(
        # The paper's central empirical result, re-measured: a finding, judged on the
        # interval of its per-seed values (here: paired differences between two arms).
        Claim(
            id="main-claim",
            kind="finding",
            statement="what the paper claims, in our words",
            source="Table 1",
            paper_value="the paper's number",
            metric="main_metric",
            # Set the threshold from the paper before looking at your result.
            rule=AtLeast(0.05),
            # every language-model arm must have learned (reports <arm>_below_unigram)
            gates=(learned_gate("baseline"), learned_gate("method")),
        ),
    ),
    timeout_s=120,
)
'''
    run = '''"""Measurements; see __init__.py for the claims."""

from __future__ import annotations


def main(cfg, ctx) -> None:
    # Until this measures something, the claim stays "not checked at this scale".
    # When it does: ctx.metrics["main_metric"] = [one value per seed], arms paired by seed.
    ctx.skip("main-claim", "not implemented yet")
'''
    test = f'''"""Tiny-config tests for the {cid} reproduction: check behaviour, never wall-clock."""

from repro.registry import resolve


def test_declaration_is_valid():
    rep = resolve("{cid}")
    assert rep.problems() == []
'''
    return {
        f"repro/papers/{module}/__init__.py": init,
        f"repro/papers/{module}/run.py": run,
        f"tests/papers/test_{module}.py": test,
    }


def _card_with_arxiv(papers: Path, query: str) -> Path | None:
    """The card whose front matter carries this arXiv id, if ``query`` is one (no YAML parse:
    a line ``arxiv: <id>`` is enough, and this stays fast)."""
    m = ARXIV_ID.match(query)
    if not m:
        return None
    line = re.compile(rf"^arxiv:\s*['\"]?{re.escape(m.group(1))}(v\d+)?['\"]?\s*$", re.M)
    for card in sorted(papers.glob("*.md")):
        head = card.read_text(encoding="utf-8", errors="replace")[:4000]
        if line.search(head):
            return card
    return None


def main(argv: list[str]) -> int:
    from repro.paths import project_root

    p = argparse.ArgumentParser(prog="repro new", description=__doc__.split("\n\n")[0])
    p.add_argument("query", nargs="+", help="an arXiv id (2205.14135) or a title")
    p.add_argument("--id", help="card id to use (default: from the title)")
    p.add_argument("--repro", action="store_true", help="also scaffold a reproduction")
    p.add_argument("--offline", action="store_true", help="do not contact arXiv")
    p.add_argument("--force", action="store_true", help="overwrite an existing card")
    args = p.parse_args(argv)
    query = " ".join(args.query).strip()
    root = project_root()
    papers = root / "notes" / "papers"
    if not papers.is_dir():
        print(
            f"repro new: error: {papers} does not exist; run this inside a checkout",
            file=sys.stderr,
        )
        return 2
    known = _card_with_arxiv(papers, query)
    if known and not args.force:
        print(
            f"repro new: error: arXiv {query} is already in the knowledge base as "
            f"{known.relative_to(root)} (edit that card, or --force to write another)",
            file=sys.stderr,
        )
        return 2
    if args.offline:
        meta, how = None, "offline: writing a card to fill"
    else:
        meta, how = fetch(query)
    if meta is None:
        m = ARXIV_ID.match(query)
        meta = PaperMeta(arxiv=m.group(1) if m else None, title="" if m else query)
    cid = args.id or (slug(meta.title) if meta.title else None)
    if not cid:
        print(
            f"repro new: {how}.\nrepro new: error: no title to name the card after; "
            f"give one with --id <kebab-case-id>",
            file=sys.stderr,
        )
        return 2
    if not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", cid):
        print(
            f"repro new: error: --id {cid!r} is not kebab-case (e.g. flash-attention)",
            file=sys.stderr,
        )
        return 2
    path = papers / f"{cid}.md"
    if path.exists() and not args.force:
        print(
            f"repro new: error: {path.relative_to(root)} already exists (use --force, or "
            f"--id for another name)",
            file=sys.stderr,
        )
        return 2
    try:
        import yaml

        vocab = list(yaml.safe_load((root / "notes" / "tags.yml").read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        vocab = []
    tags = suggest_tags(meta, vocab)
    module = cid.replace("-", "_")
    written = []
    from repro.results import atomic_write_text

    if args.repro:
        for rel, text in repro_files(cid, module, meta.title or cid).items():
            target = root / rel
            if target.exists() and not args.force:
                print(f"repro new: error: {rel} already exists", file=sys.stderr)
                return 2
            atomic_write_text(target, text)
            written.append(rel)
    atomic_write_text(path, card_text(cid, meta, tags, cid if args.repro else None))
    written.insert(0, str(path.relative_to(root)))
    print(f"repro new: {how}.")
    for rel in written:
        print(f"  wrote {rel}")
    todo = [
        name
        for name, ok in (
            ("title", meta.title),
            ("authors", meta.authors),
            ("year", meta.year),
            ("arxiv or url", meta.arxiv),
            ("tags", tags),
        )
        if not ok
    ]
    todo.append("notes (in your own words) and cites")
    print("Fill in: " + ", ".join(todo) + ". Then run `repro check`.")
    return 0
