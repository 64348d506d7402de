"""What the runner hands a reproduction's entry point: ``main(cfg, ctx) -> dict``."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class RunContext:
    """out_dir:  where figures and extra files go (``results/<id>/<preset>/``)
    device:   'cpu' or 'cuda[:n]' (already checked to exist)
    seed:     the run's seed (already applied with seed_everything)
    preset:   preset name, for messages
    metrics:  measured values so far; a run may fill it as it goes so that an interrupted
              or crashed run still keeps what it finished
    skipped:  claim id -> why it was not checked (e.g. "needs a GPU")
    figures:  paths of figures written (relative to the results folder)
    """

    out_dir: Path
    device: str = "cpu"
    seed: int = 0
    preset: str = "quick"
    show_progress: bool = True
    metrics: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def figure_path(self, name: str) -> Path:
        """Path for a figure file; it is listed in the results once written."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / name
        rel = f"{self.out_dir.name}/{name}"
        if rel not in self.figures:
            self.figures.append(rel)
        return path

    def skip(self, claim_id: str, reason: str) -> None:
        self.skipped[claim_id] = reason

    def log(self, msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    def progress(self, it: Iterable[T], total: int | None = None, desc: str = "") -> Iterator[T]:
        """Iterate with a progress bar (rich) or, when not interactive, a line every ~10 s."""
        if total is None and hasattr(it, "__len__"):
            total = len(it)  # type: ignore[arg-type]
        if self.show_progress and sys.stderr.isatty():
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=True,
            ) as bar:
                task = bar.add_task(desc or "working", total=total)
                for x in it:
                    yield x
                    bar.advance(task)
            return
        last = time.monotonic()
        for i, x in enumerate(it, 1):
            yield x
            now = time.monotonic()
            if self.show_progress and now - last > 10:
                of = f"/{total}" if total else ""
                self.log(f"  {desc or 'progress'}: {i}{of}")
                last = now
