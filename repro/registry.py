"""Finds the reproductions: every sub-package of ``repro.papers`` that declares ``REPRO``.

Only the declarations are imported (no torch): a reproduction's ``__init__.py`` must not
import its measuring code. Extra packages of reproductions can be added with
``REPRO_EXTRA_PAPERS=pkg1,pkg2`` (the tests use this for deliberately broken ones).
"""

from __future__ import annotations

import difflib
import importlib
import os
import pkgutil
from dataclasses import replace
from functools import lru_cache

from repro.claims import Reproduction


class UnknownReproduction(LookupError):
    pass


def _packages() -> list[str]:
    """``REPRO_PAPERS`` replaces the list (tests); ``REPRO_EXTRA_PAPERS`` adds to it."""
    only = [p.strip() for p in os.environ.get("REPRO_PAPERS", "").split(",") if p.strip()]
    if only:
        return only
    extra = [p.strip() for p in os.environ.get("REPRO_EXTRA_PAPERS", "").split(",") if p.strip()]
    return ["repro.papers", *extra]


@lru_cache(maxsize=1)
def discover() -> tuple[dict[str, Reproduction], tuple[str, ...]]:
    """Return ({id: Reproduction}, problems). A broken declaration is a problem, not a crash."""
    found: dict[str, Reproduction] = {}
    problems: list[str] = []
    for pkg_name in _packages():
        try:
            pkg = importlib.import_module(pkg_name)
        except Exception as e:  # noqa: BLE001 - reported to the user
            problems.append(f"{pkg_name}: cannot import: {type(e).__name__}: {e}")
            continue
        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
            if not info.ispkg or info.name.startswith("_"):
                continue
            modname = f"{pkg_name}.{info.name}"
            where = modname.replace(".", "/") + "/__init__.py"
            try:
                mod = importlib.import_module(modname)
            except Exception as e:  # noqa: BLE001
                problems.append(f"{where}: cannot import the declaration: {type(e).__name__}: {e}")
                continue
            rep = getattr(mod, "REPRO", None)
            if not isinstance(rep, Reproduction):
                problems.append(f"{where}: REPRO: missing; declare REPRO = Reproduction(...)")
                continue
            if rep.id in found:
                problems.append(
                    f"{where}: REPRO.id: {rep.id!r} is already declared by {found[rep.id].module}"
                )
                continue
            rep = replace(rep, module=modname)
            for p in rep.problems():
                problems.append(f"{where}: REPRO.{p}")
            found[rep.id] = rep
    return found, tuple(problems)


def all_reproductions() -> dict[str, Reproduction]:
    return discover()[0]


def resolve(name: str, arxiv_ids: dict[str, str] | None = None) -> Reproduction:
    """Find a reproduction by id, module name, card id, arXiv id or unique prefix."""
    reps = all_reproductions()
    key = name.strip().lower().replace("_", "-")
    if key in reps:
        return reps[key]
    for rep in reps.values():
        if rep.module.rsplit(".", 1)[-1].replace("_", "-") == key or key in rep.papers:
            return rep
    if arxiv_ids:
        card = arxiv_ids.get(name.strip().removeprefix("arXiv:").removeprefix("arxiv:"))
        if card:
            for rep in reps.values():
                if card in rep.papers:
                    return rep
    starts = sorted(r for r in reps if r.startswith(key))
    if len(starts) == 1:
        return reps[starts[0]]
    if len(starts) > 1:
        raise UnknownReproduction(
            f"{name!r} matches several reproductions: {', '.join(starts)}; give more letters"
        )
    close = difflib.get_close_matches(key, list(reps), n=3, cutoff=0.75)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownReproduction(
        f"no reproduction called {name!r}{hint} (`repro list` shows them all)"
    )
