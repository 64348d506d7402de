"""Peak memory of a CPU computation, read from PyTorch's profiler.

The profiler records each allocation on the op that made it (its "self" memory) and each free
as a "[memory]" event; walking those events in time order and keeping a running total gives
the peak of memory allocated during the call (the inputs, allocated before, are not counted).
"""

from __future__ import annotations

import torch
from torch.profiler import ProfilerActivity, profile


def peak_bytes(fn, *args) -> int:
    """Peak bytes allocated above the starting level while ``fn(*args)`` runs, without autograd."""
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = fn(*args)
        del out
    events = [e for e in prof.events() if e.self_cpu_memory_usage != 0]
    events.sort(key=lambda e: e.time_range.start)
    total = peak = 0
    for e in events:
        total += e.self_cpu_memory_usage
        peak = max(peak, total)
    return peak
