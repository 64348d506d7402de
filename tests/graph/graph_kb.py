"""A small knowledge base with a known citation structure, written as card files.

    a (2014)
    b (2017) cites a
    c (2018) cites b
    d (2018) cites b, a
    e (2020) cites c, d; its notes link to b and c (so e -> c is both kinds, e -> b a mention)
    f (2020) no edge at all

Citation chains from e back to a: e-d-a, e-c-b-a, e-d-b-a.
"""

from __future__ import annotations

import json
from pathlib import Path

TAGS = "attention: a\nefficiency: b\narchitecture: c\n"

CARDS = {
    # id: (year, cites, tags, notes)
    "a": (2014, [], ["attention"], "The oldest one."),
    "b": (2017, ["a"], ["attention", "architecture"], "Builds on a."),
    "c": (2018, ["b"], ["efficiency"], "Cites b."),
    "d": (2018, ["b", "a"], ["architecture"], "Cites b and a."),
    "e": (
        2020,
        ["c", "d"],
        ["efficiency"],
        "Compare [the model](b.md) and [c's trick](./c.md#method).\n\n"
        "An example link in code is not a reference: `[x](a.md)`.\n\n"
        "```markdown\n[also not](d.md)\n```\n",
    ),
    "f": (2020, [], ["attention"], "Stands alone."),
}


def write_card(
    root: Path,
    cid: str,
    year: int,
    cites: list[str],
    tags: list[str],
    notes: str = "Notes.",
    extra: str = "",
) -> Path:
    path = root / "notes" / "papers" / f"{cid}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "---\n"
        f"id: {cid}\n"
        f'title: "Paper {cid.upper()}: A Study of {cid}"\n'
        "authors: [Ada Lovelace]\n"
        f"year: {year}\n"
        'arxiv: "2001.00001"\n'
        f"tags: [{', '.join(tags)}]\n"
        f"cites: [{', '.join(cites)}]\n" + extra + "---\n" + notes + "\n",
        encoding="utf-8",
    )
    return path


def write_kb(root: Path) -> Path:
    (root / "notes" / "papers").mkdir(parents=True, exist_ok=True)
    (root / "notes" / "tags.yml").write_text(TAGS, encoding="utf-8")
    for cid, (year, cites, tags, notes) in CARDS.items():
        write_card(root, cid, year, cites, tags, notes)
    cols = root / "notes" / "collections"
    (cols / "lists").mkdir(parents=True, exist_ok=True)
    (cols / "core.md").write_text(
        "---\nid: core\ntitle: Core papers\nkind: list\nmembers: [a, b, e]\n---\n", "utf-8"
    )
    (cols / "lists" / "later.md").write_text(
        "---\nid: later\ntitle: Later & more\nkind: lecture\n"
        "sections:\n  - title: one\n    members: [e]\n  - title: two\n    members: [f]\n---\n",
        "utf-8",
    )
    return root


def write_result(results: Path, rep_id: str, verdicts: list[str], status: str = "ok") -> None:
    path = results / rep_id / "quick.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    claims = [{"id": f"claim-{i}", "verdict": v} for i, v in enumerate(verdicts)]
    path.write_text(
        json.dumps({"reproduction": rep_id, "preset": "quick", "status": status, "claims": claims}),
        "utf-8",
    )
