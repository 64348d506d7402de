"""A made-up knowledge base of any size, written as real card files (for ``repro graph bench``).

The cards go through the same loader as the real ones, so a benchmark times the real path.
Citations follow preferential attachment (a paper is more likely to cite one that is already
cited a lot), which gives the few heavily cited hubs that real citation graphs have; some notes
link to other cards, and the cards are spread over a few collections.
"""

from __future__ import annotations

import random
from pathlib import Path

TAGS = ("attention", "efficiency", "architecture", "scaling-laws", "fine-tuning", "theory")
COLLECTIONS = ("landmarks", "roundup", "lecture", "sublayers")


def write_kb(
    root: Path, n_cards: int, seed: int = 0, first_year: int = 1995, last_year: int = 2024
) -> list[str]:
    """Write ``n_cards`` cards, four collections and a tag list under ``root/notes``."""
    rng = random.Random(seed)
    notes = root / "notes"
    (notes / "papers").mkdir(parents=True, exist_ok=True)
    (notes / "collections").mkdir(parents=True, exist_ok=True)
    (notes / "tags.yml").write_text(
        "".join(f"{t}: synthetic tag\n" for t in TAGS), encoding="utf-8"
    )
    span = last_year - first_year
    # Later years hold more papers, as in the field itself.
    years = sorted(first_year + int(span * rng.random() ** 0.5) for _ in range(n_cards))
    ids = [f"paper-{i:04d}" for i in range(n_cards)]
    cited_count = [0] * n_cards
    members: dict[str, list[str]] = {c: [] for c in COLLECTIONS}
    for i, (cid, year) in enumerate(zip(ids, years)):
        earlier = [j for j in range(i) if years[j] <= year]
        cites: list[str] = []
        if earlier:
            weights = [1 + cited_count[j] for j in earlier]
            for j in sorted(set(rng.choices(earlier, weights=weights, k=rng.randint(1, 5)))):
                cites.append(ids[j])
                cited_count[j] += 1
        links = ""
        if earlier and rng.random() < 0.3:
            other = ids[rng.choice(earlier)]
            links = f"\nSee also [the earlier paper]({other}.md).\n"
        tags = sorted(set(rng.sample(TAGS, k=rng.randint(1, 3))))
        for c in COLLECTIONS:
            if rng.random() < 0.25:
                members[c].append(cid)
        (notes / "papers" / f"{cid}.md").write_text(
            "---\n"
            f"id: {cid}\n"
            f'title: "Synthetic Paper {i}: A Study"\n'
            "authors: [A. Author, B. Author]\n"
            f"year: {year}\n"
            f'arxiv: "{2000 + i % 100:04d}.{10000 + i:05d}"\n'
            f"tags: [{', '.join(tags)}]\n"
            f"cites: [{', '.join(cites)}]\n"
            "---\n"
            f"Notes on synthetic paper {i}.\n{links}",
            encoding="utf-8",
        )
    for c, mem in members.items():
        if not mem:
            mem = [ids[0]]
        (notes / "collections" / f"{c}.md").write_text(
            f"---\nid: {c}\ntitle: {c.title()}\nkind: list\nmembers: [{', '.join(mem)}]\n---\n",
            encoding="utf-8",
        )
    return ids
