"""The rules ``repro check`` applies across cards, declarations and committed results.

Each function returns (problems, warnings): one line each, naming the file and what would be
right. Nothing here imports torch; scipy is imported only when a stored verdict has to be
re-judged under a changed declaration.
"""

from __future__ import annotations

from pathlib import Path

from repro.claims import KINDS


def cards_vs_reproductions(kb, reps: dict) -> list[str]:
    """A card's ``repro:`` and the reproduction's ``papers`` agree, both ways."""
    problems: list[str] = []
    checkers: dict[str, list[str]] = {}
    for rep in reps.values():
        where = f"{rep.module.replace('.', '/')}/__init__.py"
        for pid in rep.papers:
            checkers.setdefault(pid, []).append(rep.id)
            card = kb.cards.get(pid)
            if card is None:
                if kb.cards:
                    problems.append(f"{where}: REPRO.papers: {pid!r} is no card id")
            elif card.meta.repro is None:
                problems.append(
                    f"notes/papers/{pid}.md: repro: missing; {rep.id!r} checks this "
                    f"paper, so add `repro: {rep.id}`"
                )
    for card in kb.cards.values():
        rid = card.meta.repro
        if rid in reps and rid not in checkers.get(card.id, []):
            problems.append(
                f"notes/papers/{card.id}.md: repro: {rid!r} does not list "
                f"{card.id!r} in its REPRO.papers; add it there or fix the card"
            )
    return problems


def committed_results(reps: dict, base: Path) -> tuple[list[str], list[str]]:
    """Stored results: made from a clean tree (error), current with the code (warning if
    stale), every claim with a kind, every finding with n and its per-seed values."""
    from repro.provenance import staleness
    from repro.results import needs_rejudge, read_result, rejudge

    problems: list[str] = []
    warnings: list[str] = []
    for rep in sorted(reps.values(), key=lambda r: r.id):
        folder = base / rep.id
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.json")):
            rel = f"results/{rep.id}/{path.name}"
            data, warn = read_result(path)
            if data is None:
                if warn:
                    problems.append(warn)
                continue
            if data.get("dirty"):
                problems.append(
                    f"{rel}: dirty: true; it was made from uncommitted code, so no commit "
                    "names what made it. Commit, then re-run it from a clean tree"
                )
            why = staleness(rep, data)
            if why:
                warnings.append(
                    f"{rel}: stale ({why}); re-run: repro run {rep.id} --preset {path.stem}"
                )
            for c in data.get("claims", []):
                if c.get("kind") not in KINDS:
                    warnings.append(f"{rel}: claim {c.get('id')!r} has no kind; `repro rejudge`")
            if not needs_rejudge(rep, data):
                # same declaration: the stored verdicts must follow from the stored metrics
                again = {c["id"]: c for c in rejudge(rep, data)["claims"]}
                for c in data.get("claims", []):
                    new = again.get(c.get("id"), {})
                    if (c.get("verdict"), c.get("measured")) != (
                        new.get("verdict"),
                        new.get("measured"),
                    ):
                        problems.append(
                            f"{rel}: claim {c.get('id')!r}: the stored verdict/value "
                            f"({c.get('verdict')}, {c.get('measured')}) does not follow from the "
                            f"stored metrics ({new.get('verdict')}, {new.get('measured')}); "
                            "results are written by runs, not by hand"
                        )
    return problems, warnings


def card_quotes(kb, base: Path) -> list[str]:
    """Every ``{{ result: ... }}`` reference in a card names something the results have."""
    from repro.quote import expand, results_loader

    problems: list[str] = []
    get = results_loader(base)
    for card in sorted(kb.cards.values(), key=lambda c: c.id):
        text = card.path.read_text(encoding="utf-8")
        if "{{" not in text:
            continue
        _, errors = expand(text, get)
        problems += [f"notes/papers/{card.id}.md: {e}" for e in errors]
    return problems
