"""What a finding needs from a run: per-seed samples, paired differences, the unigram floor.

A finding's metric is a list with one value per seed (``repro.claims`` turns it into an
interval with scipy.stats). Arms are compared *paired*: the same seed (data order,
initialisation where the architectures allow) for both arms, and the claim's metric is the
list of per-seed differences, so that seed-to-seed variation common to both arms cancels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any


def seeds_for(base: int, n: int) -> list[int]:
    """The seeds of one run: ``base, base+1, ...``. Paired arms use the same list."""
    return [base + i for i in range(n)]


def paired_differences(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """Per-seed ``a[i] − b[i]``; the two arms must have been run on the same seeds."""
    if len(a) != len(b):
        raise ValueError(f"paired arms need one value per seed each; got {len(a)} and {len(b)}")
    return [float(x) - float(y) for x, y in zip(a, b)]


def paired_ratios(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """Per-seed ``a[i] / b[i]`` for ratio claims ("2x fewer steps")."""
    if len(a) != len(b):
        raise ValueError(f"paired arms need one value per seed each; got {len(a)} and {len(b)}")
    return [float(x) / float(y) for x, y in zip(a, b)]


def unigram_entropy(train_ids: Any, vocab_size: int, eval_ids: Any | None = None) -> float:
    """Cross-entropy (nats/token) of the add-one-smoothed unigram model of ``train_ids``,
    measured on ``eval_ids`` (its entropy on the training tokens when ``eval_ids`` is None).

    The floor an LM must beat to have learned anything beyond token frequencies: the *learned*
    gate compares each arm's held-out loss with it."""
    import torch

    train = torch.as_tensor(train_ids).reshape(-1).long()
    counts = torch.bincount(train, minlength=vocab_size).double() + 1.0
    logp = counts.log() - counts.sum().log()
    if eval_ids is None:
        return float(-(logp.exp() * logp).sum())
    ev = torch.as_tensor(eval_ids).reshape(-1).long()
    return float(-logp[ev].mean())


def below_unigram(losses: Iterable[float], unigram: float) -> list[float]:
    """Per-seed margin by which held-out losses sit below the unigram floor (the *learned*
    gate's metric, ``<arm>_below_unigram``)."""
    return [unigram - float(x) for x in losses]


def over_seeds(fn: Callable[[int], dict[str, float]], seeds: Sequence[int]) -> dict[str, list]:
    """Call ``fn(seed)`` for each seed and gather each returned key into a per-seed list."""
    out: dict[str, list] = {}
    for s in seeds:
        for k, v in fn(s).items():
            out.setdefault(k, []).append(v)
    return out


def inside_grid(values: Sequence[float], best: float) -> bool:
    """True when ``best`` is an interior point of the (sorted) grid ``values``."""
    grid = sorted(values)
    return len(grid) >= 3 and grid[0] < best < grid[-1] and not math.isnan(best)
