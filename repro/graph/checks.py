"""Checks on the citation graph, one line per problem (part of ``repro check``).

Errors:
  * a ``cites:`` entry that is no card id, or that names a later paper (papers cannot cite the
    future; the same year is allowed);
  * a link in the notes to a card file that does not exist (the site build would fail on it).
Warnings:
  * a citation cycle. Within one year two papers can cite each other's preprints, so a cycle
    is reported, not refused; across years it comes with the "later paper" error above;
  * a card with no edge at all, neither citing nor cited, linking nor linked.

``repro.cards.load`` already reports a bad ``cites:`` entry when it loads the cards; with
``skip_known=True`` (the default) those are not repeated, so ``repro check`` prints each once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from repro.cards import Problem, did_you_mean

if TYPE_CHECKING:
    from repro.cards import Card, KnowledgeBase

MAX_CYCLES = 20  # report this many strongly connected groups in full; count the rest


def _rel(card: Card) -> str:
    """The card's path as ``repro.cards`` reports it (relative to the project root)."""
    parts = card.path.parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "notes" and i + 1 < len(parts) and parts[i + 1] == "papers":
            return "/".join(parts[i:])
    return str(card.path)


def _cites_line(card: Card, target: str) -> int:
    try:
        i = card.meta.cites.index(target)
    except ValueError:
        return card.lines.get("cites", 0)
    return card.lines.get(f"cites[{i}]", card.lines.get("cites", 0))


def _known(kb: KnowledgeBase, p: Problem, target: str) -> bool:
    """Whether ``repro.cards.load`` already reported this entry (same file, line and id)."""
    quoted = "cannot cite itself" if target == "" else repr(target)
    return any(
        q.path == p.path and q.line == p.line and q.field == "cites" and quoted in q.message
        for q in kb.problems
    )


def cite_problems(kb: KnowledgeBase, *, skip_known: bool = False) -> list[Problem]:
    out = []
    for cid in sorted(kb.cards):
        card = kb.cards[cid]
        rel = _rel(card)
        year = card.meta.year
        for target in card.meta.cites:
            line = _cites_line(card, target)
            if target == cid:
                p, key = Problem(rel, line, "cites", "a card cannot cite itself"), ""
            elif target not in kb.cards:
                p = Problem(
                    rel, line, "cites", f"{target!r} is no card id{did_you_mean(target, kb.cards)}"
                )
                key = target
            elif kb.cards[target].meta.year > year:
                later = kb.cards[target].meta.year
                p = Problem(
                    rel,
                    line,
                    "cites",
                    f"{target!r} is from {later}, later than this "
                    f"paper ({year}); a paper cannot cite a later one",
                )
                key = target
            else:
                continue
            if not (skip_known and _known(kb, p, key)):
                out.append(p)
    return out


def link_problems(kb: KnowledgeBase) -> list[Problem]:
    from repro.graph.build import link_targets

    out = []
    for cid in sorted(kb.cards):
        card = kb.cards[cid]
        for target, line in link_targets(card):
            if target not in kb.cards:
                out.append(
                    Problem(
                        _rel(card),
                        line,
                        "notes",
                        f"the link to {target + '.md'!r} names no card"
                        f"{did_you_mean(target, kb.cards)}",
                    )
                )
    return out


def cycle_problems(kb: KnowledgeBase, G=None) -> list[Problem]:
    import networkx as nx

    from repro.graph.build import citations, structure

    D = citations(G if G is not None else structure(kb))
    groups = [sorted(c) for c in nx.strongly_connected_components(D) if len(c) > 1]
    groups.sort()
    out = []
    for group in groups[:MAX_CYCLES]:
        start = group[0]
        # The shortest cycle through the group's first id, so that the message stays short.
        cycle = _shortest_cycle(D.subgraph(group), start)
        years = sorted({kb.cards[c].meta.year for c in group})
        when = f"all {years[0]}" if len(years) == 1 else f"years {years[0]}-{years[-1]}"
        msg = f"citation cycle {' -> '.join([*cycle, cycle[0]])} ({when})"
        if len(group) > len(cycle):
            msg += f"; {len(group)} cards cite each other round: {', '.join(group)}"
        card = kb.cards[start]
        out.append(Problem(_rel(card), _cites_line(card, cycle[1]), "cites", msg, warning=True))
    if len(groups) > MAX_CYCLES:
        out.append(
            Problem(
                "notes/papers",
                0,
                "cites",
                f"{len(groups) - MAX_CYCLES} more citation cycles not listed",
                warning=True,
            )
        )
    return out


def _shortest_cycle(D, start: str) -> list[str]:
    """Within a strongly connected group every successor leads back to ``start``."""
    import networkx as nx

    best: list[str] = []
    for succ in sorted(D.successors(start)):
        try:
            back = nx.shortest_path(D, source=succ, target=start)
        except nx.NetworkXNoPath:
            continue
        cycle = [start, *back[:-1]]
        if not best or len(cycle) < len(best):
            best = cycle
    return best


def isolated_problems(kb: KnowledgeBase, G=None) -> list[Problem]:
    from repro.graph.build import structure

    G = G if G is not None else structure(kb)
    if G.number_of_nodes() < 2:
        return []
    out = []
    for cid in sorted(kb.cards):
        if G.degree(cid) == 0:
            out.append(
                Problem(
                    _rel(kb.cards[cid]),
                    kb.cards[cid].lines.get("cites", 0),
                    "cites",
                    "no citation or link to or from any other card; list "
                    "the cards it cites in `cites:` or link related cards in the notes",
                    warning=True,
                )
            )
    return out


def problems(kb: KnowledgeBase, *, skip_known: bool = True) -> list[Problem]:
    from repro.graph.build import structure

    G = structure(kb)
    out = (
        cite_problems(kb, skip_known=skip_known)
        + link_problems(kb)
        + cycle_problems(kb, G)
        + isolated_problems(kb, G)
    )
    return sorted(set(out))


def run_checks(kb: KnowledgeBase, *, skip_known: bool = True) -> tuple[list[str], list[str]]:
    """(errors, warnings), one line each: ``notes/papers/x.md:7: cites: ...``."""
    found = problems(kb, skip_known=skip_known)
    return [str(p) for p in found if not p.warning], [str(p) for p in found if p.warning]
