"""Where the project's files are: the checkout root, the notes and the results.

The root is, in order: ``$REPRO_ROOT``; the nearest folder above the working directory that
holds ``notes/papers``; the checkout this package was imported from (an editable install);
the working directory.
"""

from __future__ import annotations

import os
from pathlib import Path


def _looks_like_root(p: Path) -> bool:
    return (p / "notes" / "papers").is_dir()


def project_root() -> Path:
    env = os.environ.get("REPRO_ROOT")
    if env:
        return Path(env).resolve()
    cwd = Path.cwd().resolve()
    for p in (cwd, *cwd.parents):
        if _looks_like_root(p):
            return p
    here = Path(__file__).resolve().parent.parent
    if _looks_like_root(here):
        return here
    return cwd


def notes_dir(root: Path | None = None) -> Path:
    return (root or project_root()) / "notes"


def results_dir(root: Path | None = None) -> Path:
    env = os.environ.get("REPRO_RESULTS")
    if env:
        return Path(env).resolve()
    return (root or project_root()) / "results"


def runs_dir(root: Path | None = None) -> Path:
    """Local run history (ignored by git): every run lands here first, and only a complete,
    clean run of a named preset is copied to ``results/``."""
    env = os.environ.get("REPRO_RUNS")
    if env:
        return Path(env).resolve()
    return (root or project_root()) / "runs"


def cache_dir() -> Path:
    """Tokenizers and prepared data; safe to delete."""
    env = os.environ.get("REPRO_CACHE")
    base = (
        Path(env)
        if env
        else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "repro"
    )
    base.mkdir(parents=True, exist_ok=True)
    return base
