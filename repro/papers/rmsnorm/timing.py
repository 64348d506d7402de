"""Interleaved timing: two candidates are timed in alternating short blocks and compared by the
median of the per-round ratios, so that a change in machine load during the measurement
hits both alike (the machines these run on are shared).

On a CPU the run reads the process's CPU time (``time.process_time``) rather than the wall
clock: time spent waiting for a core that another job holds then does not count against
whichever candidate happened to be running. On a GPU the benchmark uses the wall clock
after a synchronise."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def _block(fn: Callable[[], object], iters: int, clock: Callable[[], float]) -> float:
    t0 = clock()
    for _ in range(iters):
        fn()
    return (clock() - t0) / iters


def race(
    slow: Callable[[], object],
    fast: Callable[[], object],
    rounds: int = 15,
    iters: int = 5,
    warmup: int = 3,
    clock: Callable[[], float] | None = None,
) -> dict:
    """Median over rounds of time(slow)/time(fast), every round's ratio (``ratios``, the sample
    a timing claim is judged on), and each side's median time in seconds.
    A ratio above 1 means ``fast`` is faster. The order within a round alternates."""
    clock = clock or time.perf_counter
    for _ in range(warmup):
        slow()
        fast()
    ratios, ts, tf = [], [], []
    for r in range(rounds):
        if r % 2:
            b = _block(fast, iters, clock)
            a = _block(slow, iters, clock)
        else:
            a = _block(slow, iters, clock)
            b = _block(fast, iters, clock)
        ts.append(a)
        tf.append(b)
        ratios.append(a / b)
    return {
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "slow_s": statistics.median(ts),
        "fast_s": statistics.median(tf),
    }


def norm_callables(norm, x, backward: bool):
    """A closure running the norm forward (and backward when asked) on ``x``."""
    import torch

    if not backward:

        def fwd():
            with torch.no_grad():
                return norm(x)

        return fwd
    xg = x.detach().requires_grad_(True)
    g = torch.randn_like(x)

    def fwd_bwd():
        y = norm(xg)
        y.backward(g)
        xg.grad = None
        for p in norm.parameters():
            p.grad = None

    return fwd_bwd
