"""Split ``repro all`` into disjoint shards of about equal running time (``--shard I/N``).

Each reproduction's cost is the duration its committed result for that preset recorded; one
without a result counts as its declared quick time limit (a generous estimate), so new
reproductions do not pile onto one shard. Reproductions are dealt longest first to the shard
with the least work so far (ties: the lower shard number), which is deterministic: every
runner that sees the same tree computes the same shards, and together they hold every
reproduction exactly once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` → (2, 4); shards are numbered from 1."""
    m = _SPEC.match(text or "")
    if not m:
        raise ValueError(f"--shard {text!r}: expected I/N with 1 ≤ I ≤ N, e.g. --shard 2/4")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 1 <= i <= n:
        raise ValueError(f"--shard {text}: expected I/N with 1 ≤ I ≤ N, e.g. --shard 2/4")
    return i, n


def estimate_s(rep: Any, preset: str) -> float:
    """Seconds one run of ``rep`` at ``preset`` is expected to take (see the module doc)."""
    from repro.results import load_result

    res = load_result(rep.id, preset)
    dur = res.get("duration_s") if res else None
    if isinstance(dur, int | float) and dur > 0:
        return float(dur)
    return float(rep.timeout_s)


def assign(costs: dict[str, float], n: int) -> list[list[str]]:
    """Deal ids to ``n`` shards, longest first, each to the least loaded shard."""
    shards: list[list[str]] = [[] for _ in range(n)]
    load = [0.0] * n
    for rid in sorted(costs, key=lambda r: (-costs[r], r)):
        k = min(range(n), key=lambda j: (load[j], j))
        shards[k].append(rid)
        load[k] += costs[rid]
    return shards


def select(reps: Sequence[Any], preset: str, i: int, n: int) -> tuple[list[Any], list[float]]:
    """The reproductions of shard ``i`` of ``n`` and every shard's estimated seconds."""
    costs = {r.id: estimate_s(r, preset) for r in reps}
    shards = assign(costs, n)
    mine = set(shards[i - 1])
    return [r for r in reps if r.id in mine], [sum(costs[x] for x in s) for s in shards]
