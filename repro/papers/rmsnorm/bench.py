"""``repro bench rmsnorm``: time(LayerNorm)/time(RMSNorm) by width, forward and
forward+backward, for our two norms (same tensor operations) and for PyTorch's modules.

Ratios above 1 mean RMSNorm is faster. Each cell is the median of interleaved rounds (see
``timing.py``; CPU time on a CPU, synchronised wall time on a GPU). Results go to stdout and, as JSON, to ``results/rmsnorm/bench-<device>.json``.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass

import torch

from repro.config import build_config

from .norms import make
from .timing import norm_callables, race


@dataclass(frozen=True)
class BenchConfig:
    widths: tuple[int, ...] = (128, 256, 512, 1024, 2048, 4096)
    rows: int = 2048  # vectors per call (e.g. batch × sequence)
    rounds: int = 15  # interleaved rounds per cell
    dtype: str = "float32"
    save: bool = True  # write the JSON next to the run results


PAIRS = {"ours": ("layernorm", "rmsnorm"), "torch": ("torch-layernorm", "torch-rmsnorm")}


def main(overrides: dict, device: str = "cpu") -> int:
    cfg = build_config(BenchConfig, {}, overrides)
    dev = "cuda" if device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
    dtype = getattr(torch, cfg.dtype)
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    # CPU: this process's CPU time, so waiting for a core on a shared machine does not count
    clock = time.perf_counter if dev == "cuda" else time.process_time
    gen = torch.Generator(device=dev).manual_seed(0)
    table: dict[str, dict[str, dict[str, float]]] = {}
    print(
        f"time(LayerNorm) / time(RMSNorm), {cfg.rows} rows, {cfg.dtype}, {dev}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)"
    )
    print(f"{'width':>6} | {'ours fwd':>9} {'ours f+b':>9} | {'torch fwd':>9} {'torch f+b':>9}")
    for d in cfg.widths:
        x = torch.randn(cfg.rows, d, generator=gen, device=dev, dtype=dtype)
        row: dict[str, dict[str, float]] = {}
        for name, (a, b) in PAIRS.items():
            ln, rms = make(a, d).to(dev, dtype), make(b, d).to(dev, dtype)
            for mode, bwd in (("fwd", False), ("fwd_bwd", True)):
                fa, fb = norm_callables(ln, x, bwd), norm_callables(rms, x, bwd)

                def timed(f):
                    def g():
                        f()
                        sync()

                    return g

                r = race(timed(fa), timed(fb), rounds=cfg.rounds, clock=clock)
                row.setdefault(name, {})[mode] = r["ratio"]
                row[name][f"{mode}_ln_us"] = r["slow_s"] * 1e6
                row[name][f"{mode}_rms_us"] = r["fast_s"] * 1e6
        table[str(d)] = row
        print(
            f"{d:>6} | {row['ours']['fwd']:>9.2f} {row['ours']['fwd_bwd']:>9.2f} | "
            f"{row['torch']['fwd']:>9.2f} {row['torch']['fwd_bwd']:>9.2f}"
        )
    if cfg.save:
        from repro.paths import results_dir

        out = results_dir() / "rmsnorm" / f"bench-{dev}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "config": asdict(cfg),
            "device": dev,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "machine": platform.processor() or platform.machine(),
        }
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps({**meta, "speedup": table}, indent=1))
        tmp.replace(out)
        print(f"saved {out}")
    return 0
