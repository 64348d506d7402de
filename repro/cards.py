"""Paper cards and collections: load, validate, and report every problem at once.

A card is ``notes/papers/<id>.md``: YAML front matter between ``---`` lines, then notes in
Markdown. A collection is ``notes/collections/**/<id>.md`` whose front matter lists member
card ids (flat ``members`` or ``sections`` with headings). The schema is the pydantic model
:class:`CardMeta`; ``repro schema`` prints its JSON Schema.

Every problem becomes one :class:`Problem` line ``file:line: field: what is wrong; what would
be right``. Loading never raises on bad input: arbitrary text gives a card or problems.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from repro.frontmatter import (
    Problem,
    did_you_mean,
    load_light,
    parse_front,
    split_front_matter,
)

__all__ = [
    "CardMeta",
    "CollectionMeta",
    "Card",
    "Collection",
    "KnowledgeBase",
    "Problem",
    "load",
    "load_light",
    "load_card_file",
    "load_collection_file",
    "split_front_matter",
    "did_you_mean",
    "card_json_schema",
]

MAX_CARD_BYTES = 64 * 1024  # a card is notes, not a paper: 64 KiB is ~10k words
ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# new-style 1501.00001 / 2205.14135v2, old-style hep-th/9901001 or cs.CL/0102003
ARXIV_RE = re.compile(r"^(?:\d{4}\.\d{4,5}|[a-z][a-z-]*(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?$")
MIN_YEAR = 1940
COLLECTION_KINDS = ("list", "roundup", "post", "lecture")


# --------------------------------------------------------------------------- schema
class CardMeta(BaseModel):
    """Front matter of a paper card."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str = Field(description="kebab-case; equals the file name without .md")
    title: str = Field(min_length=3, description="the paper's title as it has it")
    authors: list[str] = Field(min_length=1, description="authors in the paper's order")
    year: int = Field(description="year of first publication (arXiv v1 or venue)")
    venue: str | None = Field(default=None, description="e.g. 'NeurIPS 2022'")
    arxiv: str | None = Field(default=None, description="arXiv id such as '2205.14135'")
    url: str | None = Field(default=None, description="link for papers not on arXiv")
    tags: list[str] = Field(min_length=1, description="from notes/tags.yml")
    cites: list[str] = Field(default_factory=list, description="ids of cards this paper cites")
    repro: str | None = Field(default=None, description="id of the reproduction that checks it")
    short: str | None = Field(
        default=None,
        max_length=28,
        description="short name for drawings and lists, e.g. 'GPT-1', 'Kaplan scaling laws'",
    )
    tldr: str | None = Field(
        default=None,
        max_length=240,
        description="one line in our own words: what the paper shows (under the title)",
    )
    code: str | None = Field(default=None, description="the authors' code repository (http(s))")
    figures: dict[str, str] = Field(
        default_factory=dict,
        description="caption of each result figure shown on the card, by file name "
        "(e.g. 'memory.png'); it is also the image's alt text",
    )

    @field_validator("id")
    @classmethod
    def _id_kebab(cls, v: str) -> str:
        if not ID_RE.match(v):
            raise ValueError(f"{v!r} is not kebab-case (lowercase words joined by '-')")
        return v

    @field_validator("year")
    @classmethod
    def _year_sane(cls, v: int) -> int:
        top = _dt.date.today().year + 1
        if not MIN_YEAR <= v <= top:
            raise ValueError(f"{v} is outside {MIN_YEAR}..{top}")
        return v

    @field_validator("arxiv")
    @classmethod
    def _arxiv_pattern(cls, v: str | None) -> str | None:
        if v is not None and not ARXIV_RE.match(v):
            raise ValueError(
                f"{v!r} is not an arXiv id; expected e.g. '2205.14135' or 'cs.CL/0102003'"
            )
        return v

    @field_validator("url", "code")
    @classmethod
    def _url_http(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^\s<>\"']+$", v):
            raise ValueError(f"{v!r} is not an http(s) URL")
        return v

    @field_validator("short", "tldr")
    @classmethod
    def _one_line(cls, v: str | None) -> str | None:
        if v is not None and ("\n" in v or not v):
            raise ValueError("must be one non-empty line")
        return v

    @field_validator("figures")
    @classmethod
    def _figure_captions(cls, v: dict[str, str]) -> dict[str, str]:
        for name, caption in v.items():
            if not re.fullmatch(r"[A-Za-z0-9_.-]+\.(png|svg|jpg)", name):
                raise ValueError(f"{name!r} is not a figure file name such as 'memory.png'")
            if not caption or "\n" in caption.strip():
                raise ValueError(f"caption of {name!r} must be one non-empty line")
        return v

    @field_validator("authors", "tags", "cites")
    @classmethod
    def _no_empty(cls, v: list[str]) -> list[str]:
        if any(not s for s in v):
            raise ValueError("contains an empty entry")
        return v


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str
    members: list[str] = Field(min_length=1)


class CollectionMeta(BaseModel):
    """Front matter of a collection page."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str
    title: str
    kind: str = Field(description=f"one of {', '.join(COLLECTION_KINDS)}")
    source: str | None = Field(default=None, description="what document the collection follows")
    date: str | None = Field(default=None, description="YYYY-MM for roundups")
    order: int | None = Field(default=None, description="position in navigation")
    members: list[str] = Field(default_factory=list)
    sections: list[Section] = Field(default_factory=list)

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        if v not in COLLECTION_KINDS:
            raise ValueError(f"{v!r} is not a collection kind; use one of {COLLECTION_KINDS}")
        return v

    @field_validator("date")
    @classmethod
    def _date(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^\d{4}-\d{2}$", v):
            raise ValueError(f"{v!r} is not YYYY-MM")
        return v

    def all_members(self) -> list[str]:
        out = list(self.members)
        for s in self.sections:
            out.extend(s.members)
        return out


# --------------------------------------------------------------------------- problems
@dataclass
class Card:
    meta: CardMeta
    path: Path
    body: str
    body_line: int  # line number where the notes start
    lines: dict[str, int] = field(default_factory=dict)  # field -> line

    @property
    def id(self) -> str:
        return self.meta.id


@dataclass
class Collection:
    meta: CollectionMeta
    path: Path
    body: str
    lines: dict[str, int] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.meta.id


@dataclass
class KnowledgeBase:
    cards: dict[str, Card]
    collections: dict[str, Collection]
    problems: list[Problem]
    tags: dict[str, str]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if not p.warning]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.warning]

    def collections_of(self, card_id: str) -> list[str]:
        return [c.id for c in self.collections.values() if card_id in c.meta.all_members()]


# --------------------------------------------------------------------------- parsing
def _pydantic_problems(
    err: ValidationError, path: str, lines: dict[str, int], valid_fields: list[str]
) -> list[Problem]:
    out = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        fld = loc[0] if loc else ""
        sub = f"{fld}[{loc[1]}]" if len(loc) > 1 and loc[1].isdigit() else fld
        line = lines.get(sub) or lines.get(fld) or 0
        kind = e["type"]
        if kind == "extra_forbidden":
            msg = f"unknown field{did_you_mean(fld, valid_fields)}; allowed: {', '.join(valid_fields)}"
        elif kind == "missing":
            msg = "required field is missing"
            line = 0
        elif kind == "value_error":
            msg = str(e["msg"]).removeprefix("Value error, ")
        else:
            got = e.get("input")
            shown = repr(got) if len(repr(got)) < 60 else repr(got)[:57] + "..."
            msg = f"{e['msg'].lower()} (got {shown})"
        field_name = ".".join(loc) if loc else ""
        out.append(Problem(path, line, field_name, msg))
    return out


def _unsafe_html(body: str, first_line: int, path: str) -> list[Problem]:
    """Raw HTML that could run script in a reader's browser."""
    checks = [
        (
            re.compile(
                r"<\s*(script|iframe|object|embed|frame|frameset|base|meta|link|form)\b", re.I
            ),
            "raw <{0}> is not allowed in notes; write Markdown (links, images, code blocks)",
        ),
        (
            re.compile(r"<[^>]*\son[a-z]+\s*=", re.I),
            "an HTML event handler (on...=) is not allowed in notes",
        ),
        (re.compile(r"javascript\s*:", re.I), "a javascript: URL is not allowed in notes"),
        (re.compile(r"data\s*:\s*text/html", re.I), "a data:text/html URL is not allowed in notes"),
        (re.compile(r"vbscript\s*:", re.I), "a vbscript: URL is not allowed in notes"),
    ]
    out = []
    for i, line in enumerate(body.split("\n")):
        for rx, msg in checks:
            m = rx.search(line)
            if m:
                what = m.group(1).lower() if m.groups() else ""
                out.append(Problem(path, first_line + i, "notes", msg.format(what)))
    return out


def _read(path: Path, root: Path) -> tuple[str | None, list[Problem]]:
    rel = _rel(path, root)
    try:
        size = path.stat().st_size
        if size > MAX_CARD_BYTES:
            return None, [
                Problem(
                    rel,
                    0,
                    "",
                    f"file is {size} bytes; the limit is "
                    f"{MAX_CARD_BYTES} bytes: keep notes short and link out",
                )
            ]
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, [Problem(rel, 0, "", f"not valid UTF-8 ({e.reason} at byte {e.start})")]
    except OSError as e:
        return None, [Problem(rel, 0, "", f"cannot read: {e.strerror}")]
    return text.replace("\r\n", "\n"), []


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _validated(path: Path, root: Path, model: type[BaseModel]):
    """Read, split, parse and validate one file against ``model``. Never raises.

    Returns (meta or None, body, body line, key lines, problems).
    """
    rel = _rel(path, root)
    text, problems = _read(path, root)
    if text is None:
        return None, "", 0, {}, problems
    data, body, body_line, lines, problems = parse_front(text, rel)
    if data is None:
        return None, body, body_line, lines, problems
    try:
        meta = model.model_validate(data)
    except ValidationError as e:
        return (
            None,
            body,
            body_line,
            lines,
            _pydantic_problems(e, rel, lines, list(model.model_fields)),
        )
    problems = _unsafe_html(body, body_line, rel)
    if meta.id != path.stem:
        problems.append(
            Problem(
                rel,
                lines.get("id", 0),
                "id",
                f"{meta.id!r} differs from the file name; rename the file to "
                f"{meta.id}.md or set id: {path.stem}",
            )
        )
    return meta, body, body_line, lines, problems


def load_card_file(path: Path, root: Path) -> tuple[Card | None, list[Problem]]:
    """Parse and validate one card on its own (no cross-card checks). Never raises."""
    meta, body, body_line, lines, problems = _validated(path, root, CardMeta)
    if meta is None:
        return None, problems
    if meta.arxiv is None and meta.url is None:
        problems.append(
            Problem(
                _rel(path, root),
                0,
                "arxiv",
                "a card needs `arxiv:` (the paper's arXiv id) or `url:` where "
                "the paper is not on arXiv",
            )
        )
    return Card(meta, path, body, body_line, lines), problems


def load_collection_file(path: Path, root: Path) -> tuple[Collection | None, list[Problem]]:
    meta, body, _body_line, lines, problems = _validated(path, root, CollectionMeta)
    if meta is None:
        return None, problems
    if not meta.all_members():
        problems.append(
            Problem(
                _rel(path, root),
                0,
                "members",
                "a collection lists at least one card id in `members:` or `sections:`",
            )
        )
    return Collection(meta, path, body, lines), problems


def load_tags(notes: Path) -> tuple[dict[str, str], list[Problem]]:
    path = notes / "tags.yml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, [Problem(str(path), 0, "", "the tag vocabulary file is missing")]
    except yaml.YAMLError as e:
        return {}, [Problem(str(path), 0, "", f"YAML error: {e}")]
    if not isinstance(data, dict):
        return {}, [Problem(str(path), 0, "", "must map each tag to a short description")]
    return {str(k): str(v) for k, v in data.items()}, []


def load(root: Path | None = None, *, registered: Iterable[str] | None = None) -> KnowledgeBase:
    """Load every card and collection under ``root/notes`` and run every check.

    ``registered``: ids of the registered reproductions (for ``repro:``); None skips that check.
    """
    from repro.paths import project_root

    root = root or project_root()
    notes = root / "notes"
    tags, problems = load_tags(notes)
    cards: dict[str, Card] = {}
    first_seen: dict[str, str] = {}
    for path in sorted((notes / "papers").glob("*.md")):
        card, probs = load_card_file(path, root)
        problems += probs
        if card is None:
            continue
        rel = _rel(path, root)
        if card.id in cards:
            problems.append(
                Problem(
                    rel,
                    card.lines.get("id", 0),
                    "id",
                    f"duplicate id {card.id!r}, also used by {first_seen[card.id]}",
                )
            )
            continue
        cards[card.id] = card
        first_seen[card.id] = rel

    for card in cards.values():
        rel = _rel(card.path, root)
        for i, tag in enumerate(card.meta.tags):
            if tag not in tags:
                problems.append(
                    Problem(
                        rel,
                        card.lines.get(f"tags[{i}]", card.lines.get("tags", 0)),
                        "tags",
                        f"{tag!r} is not in notes/tags.yml{did_you_mean(tag, tags)}",
                    )
                )
        for i, cid in enumerate(card.meta.cites):
            line = card.lines.get(f"cites[{i}]", card.lines.get("cites", 0))
            if cid == card.id:
                problems.append(Problem(rel, line, "cites", "a card cannot cite itself"))
            elif cid not in cards:
                problems.append(
                    Problem(rel, line, "cites", f"{cid!r} is no card id{did_you_mean(cid, cards)}")
                )
            elif cards[cid].meta.year > card.meta.year:
                problems.append(
                    Problem(
                        rel,
                        line,
                        "cites",
                        f"{cid!r} is from {cards[cid].meta.year}, later than this "
                        f"paper ({card.meta.year}); a paper cannot cite a later one",
                    )
                )
        if len(set(card.meta.cites)) != len(card.meta.cites):
            problems.append(Problem(rel, card.lines.get("cites", 0), "cites", "lists an id twice"))
        if registered is not None and card.meta.repro is not None:
            reg = list(registered)
            if card.meta.repro not in reg:
                problems.append(
                    Problem(
                        rel,
                        card.lines.get("repro", 0),
                        "repro",
                        f"{card.meta.repro!r} is no registered reproduction"
                        f"{did_you_mean(card.meta.repro, reg)}",
                    )
                )

    collections: dict[str, Collection] = {}
    for path in sorted((notes / "collections").rglob("*.md")):
        col, probs = load_collection_file(path, root)
        problems += probs
        if col is None:
            continue
        rel = _rel(path, root)
        if col.id in collections:
            problems.append(
                Problem(rel, col.lines.get("id", 0), "id", f"duplicate collection id {col.id!r}")
            )
            continue
        collections[col.id] = col
        seen: set[str] = set()
        for mid in col.meta.all_members():
            if mid not in cards:
                problems.append(
                    Problem(rel, 0, "members", f"{mid!r} is no card id{did_you_mean(mid, cards)}")
                )
            if mid in seen:
                problems.append(Problem(rel, 0, "members", f"{mid!r} is listed twice"))
            seen.add(mid)

    return KnowledgeBase(cards, collections, sorted(set(problems)), tags)


def card_json_schema(tags: Iterable[str] | None = None) -> dict[str, Any]:
    """JSON Schema of a card's front matter, for editors (``repro schema``).

    Generated from :class:`CardMeta`; the rules its validators enforce in Python are added as
    patterns and bounds, and ``tags`` (the vocabulary) as an enum, so editors flag them too.
    """
    schema = CardMeta.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Paper card front matter"
    props = schema["properties"]
    props["id"]["pattern"] = ID_RE.pattern
    props["year"].update(minimum=MIN_YEAR, maximum=_dt.date.today().year + 1)
    for branch in props["arxiv"].get("anyOf", []):
        if branch.get("type") == "string":
            branch["pattern"] = ARXIV_RE.pattern
    if tags is not None:
        props["tags"]["items"] = {"type": "string", "enum": sorted(tags)}
    return schema
