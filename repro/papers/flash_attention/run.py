"""Measurements for FlashAttention. The claims and what is left out are in ``__init__.py``.

How each claim is measured:

* Exactness: fresh random inputs per case; the Triton kernel's output and gradients are compared
  with float64 attention (on the same rounded inputs), and so is naive attention run in the same
  low precision. The ratio of the two max-abs errors is the metric. An error below one rounding
  unit of the dtype at the scale of the computation (the result's, or 1 for unit-normal inputs,
  whichever is larger) is not resolvable, so that floor stands in for a naive error that happens
  to be smaller (e.g. dQ at N = 1, exactly 0, where naive attention hits 0 and we hit 1e-7).
* Memory: peak bytes of tensors alive during forward + backward, beyond the inputs. On the CPU
  every op's new output storage is recorded through a ``TorchDispatchMode`` and released when
  PyTorch frees it (a weakref finalizer on the storage), so the count is exact for tensors and
  leaves out only scratch space inside single ops. On a GPU, ``torch.cuda.max_memory_allocated``.
  The CPU run measures the tiled reference (the kernel's interpreter is far too slow at 16k); a
  GPU run measures the Triton kernel itself. The growth exponent α of M(N) = a + b·N^α is read
  from the increments M(N) − M(N/2), which removes the constant a (tile buffers, a few MB).
* IO: the reference's Algorithms 1+4 and 0+3 count every element they load from or store to
  the full-size tensors ("HBM"); tiles are what the algorithm may keep on chip.
* Speed (GPU): ``triton.testing.do_bench`` medians of forward + backward, ours vs naive.
"""

from __future__ import annotations

import math
import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from repro.context import RunContext

from . import reference as ref

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
# Unit roundoff of each dtype: half the distance from 1 to the next representable number.
UNIT_ROUNDOFF = {torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8, torch.float32: 2.0**-24}


# --------------------------------------------------------------------------- exactness
def parse_case(text: str) -> tuple[int, int, int, bool, torch.dtype]:
    """'113x203-d80-causal-bf16' -> (113, 203, 80, True, torch.bfloat16)."""
    try:
        lengths, d, mode, dtype = text.split("-")
        n_q, n_k = (int(x) for x in lengths.split("x"))
        if not d.startswith("d") or mode not in ("causal", "full") or dtype not in DTYPES:
            raise ValueError
        return n_q, n_k, int(d[1:]), mode == "causal", DTYPES[dtype]
    except ValueError:
        raise ValueError(f"exact case {text!r}: expected like '113x203-d80-causal-bf16'") from None


def max_err(x: torch.Tensor, ref64: torch.Tensor) -> float:
    return (x.double() - ref64).abs().max().item()


def compare_case(
    n_q: int,
    n_k: int,
    d: int,
    causal: bool,
    dtype: torch.dtype,
    heads: int,
    device: str,
    gen: torch.Generator,
) -> dict:
    """Errors of the kernel and of naive attention in `dtype`, both against float64."""
    from .kernel import flash_attention

    def draw(n):
        return torch.randn(1, heads, n, d, generator=gen).to(device=device, dtype=dtype)

    q, k, v = draw(n_q), draw(n_k), draw(n_k)
    do = draw(n_q)
    grads = {}
    for name, fn, cast in (
        ("ref", ref.naive_attention, torch.float64),
        ("naive", ref.naive_attention, dtype),
        ("ours", flash_attention, dtype),
    ):
        leaves = [x.detach().to(cast).requires_grad_() for x in (q, k, v)]
        out = fn(*leaves, causal=causal)
        out.backward(do.to(cast))
        grads[name] = [out.detach()] + [x.grad for x in leaves]
    row = {}
    for i, name in enumerate(("out", "dq", "dk", "dv")):
        r = grads["ref"][i]
        floor = UNIT_ROUNDOFF[dtype] * max(r.abs().max().item(), 1.0)
        ours, naive = max_err(grads["ours"][i], r), max_err(grads["naive"][i], r)
        row[name] = {
            "err_ours": ours,
            "err_naive": naive,
            "ratio": ours / max(naive, floor) if ours > 0 else 0.0,
        }
    return row


# --------------------------------------------------------------------------- memory
class PeakTensorMemory(TorchDispatchMode):
    """Peak bytes of tensor storages created inside the ``with`` block and still alive.

    A storage is new when an op returns it and it is neither known already nor shared with one
    of the op's inputs (views and in-place ops return their input's storage)."""

    def __init__(self):
        super().__init__()
        self.live = 0
        self.peak = 0
        self._known: weakref.WeakSet = weakref.WeakSet()

    def _freed(self, nbytes: int) -> None:
        self.live -= nbytes

    def _track(self, t: torch.Tensor, args) -> None:
        st = t.untyped_storage()
        if st in self._known:
            return
        for a in args:
            if isinstance(a, torch.Tensor) and a.untyped_storage() is st:
                return
        self._known.add(st)
        nbytes = st.nbytes()
        self.live += nbytes
        weakref.finalize(st, self._freed, nbytes)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, tuple | list) else (out,):
            if isinstance(t, torch.Tensor):
                self._track(t, args)
        self.peak = max(self.peak, self.live)
        return out


def peak_extra_bytes(fn, device: str) -> int:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    with PeakTensorMemory() as tracker:
        fn()
    return tracker.peak


def memory_point(
    n: int, d: int, block: int, causal: bool, device: str, gen: torch.Generator
) -> dict:
    """Peak extra bytes of forward + backward at length n: tiled/kernel path vs naive."""
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    q, k, v, do = (
        torch.randn(1, 1, n, d, generator=gen).to(device=device, dtype=dtype) for _ in range(4)
    )

    def tiled():
        if device.startswith("cuda"):
            from .kernel import flash_attention

            leaves = [x.clone().requires_grad_() for x in (q, k, v)]
            flash_attention(*leaves, causal=causal).backward(do)
        else:
            o, lse = ref.tiled_forward(q, k, v, causal, block_r=block, block_c=block)
            ref.tiled_backward(do, q, k, v, o, lse, causal, block_r=block, block_c=block)

    def naive():
        leaves = [x.clone().requires_grad_() for x in (q, k, v)]
        ref.naive_attention(*leaves, causal=causal).backward(do)

    if device.startswith("cuda"):
        # Warm up first: the first call at a new length autotunes, and the autotuner's timing
        # runs allocate a 256 MiB cache-flush buffer that must not count as our memory.
        tiled()
        torch.cuda.synchronize()
    # The leaf copies are made inside fn on both sides, so both counts include them equally.
    return {
        "n": n,
        "tiled_bytes": peak_extra_bytes(tiled, device),
        "naive_bytes": peak_extra_bytes(naive, device),
        "dtype": str(dtype)[6:],
    }


def loglog_slope(xs, ys) -> float:
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def growth_exponent(ns, ms) -> float:
    """α in M(N) = a + b·N^α, from the increments over a geometric sequence of lengths."""
    ratios = {round(b / a, 6) for a, b in zip(ns, ns[1:])}
    if len(ns) < 3 or len(ratios) != 1:
        raise ValueError(f"need ≥ 3 lengths in a geometric sequence, got {list(ns)}")
    inc = [b - a for a, b in zip(ms, ms[1:])]
    if min(inc) <= 0:
        return float("nan")  # memory did not grow with N: no exponent to speak of
    return loglog_slope(ns[1:], inc)


# --------------------------------------------------------------------------- IO
def io_counts(n: int, d: int, sram: int, gen: torch.Generator) -> dict:
    """Elements moved by Algorithms 1 + 4 (blocks from an on-chip memory of `sram` elements)
    and by Algorithms 0 + 3, non-causal, one head."""
    q, k, v, do = (torch.randn(1, 1, n, d, generator=gen) for _ in range(4))
    b_r, b_c = ref.block_sizes(sram, d)
    fwd, bwd = ref.HBM(), ref.HBM()
    o, lse = ref.tiled_forward(q, k, v, block_r=b_r, block_c=b_c, hbm=fwd)
    ref.tiled_backward(do, q, k, v, o, lse, block_r=b_r, block_c=b_c, hbm=bwd)
    std_fwd, std_bwd = ref.HBM(), ref.HBM()
    _, p = ref.standard_forward(q, k, v, hbm=std_fwd)
    ref.standard_backward(do, q, k, v, p, hbm=std_bwd)
    return {
        "sram_elements": sram,
        "block_r": b_r,
        "block_c": b_c,
        "flash_fwd": fwd.total,
        "flash_bwd": bwd.total,
        "standard_fwd": std_fwd.total,
        "standard_bwd": std_bwd.total,
    }


# --------------------------------------------------------------------------- plots
def plot_memory(points: list[dict], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [p["n"] for p in points]
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    ax.loglog(ns, [p["naive_bytes"] / 2**20 for p in points], "o-", label="standard attention")
    ax.loglog(ns, [p["tiled_bytes"] / 2**20 for p in points], "s-", label="tiled (FlashAttention)")
    for p in points:
        ax.annotate(
            f"{p['naive_bytes'] / p['tiled_bytes']:.0f}×",
            (p["n"], p["naive_bytes"] / 2**20),
            textcoords="offset points",
            xytext=(-8, 6),
            fontsize=8,
        )
    ax.set_xlabel("sequence length N")
    ax.set_ylabel("peak extra memory, fwd + bwd (MiB)")
    ax.set_title("memory: quadratic vs linear in N")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_io(rows: list[dict], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = [r["sram_elements"] * 2 / 1024 for r in rows]  # KiB of fp16
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    ax.loglog(m, [r["flash_fwd"] / 1e6 for r in rows], "s-", label="Algorithm 1 (FlashAttention)")
    ax.loglog(m, [r["standard_fwd"] / 1e6 for r in rows], "k--", label="Algorithm 0 (standard)")
    c = rows[0]["flash_fwd"] * m[0]
    ax.loglog(m, [c / x / 1e6 for x in m], ":", color="gray", label="∝ 1/M")
    ax.set_xlabel("on-chip memory M (KiB of fp16)")
    ax.set_ylabel("HBM accesses, forward (M elements)")
    ax.set_title("IO complexity (Theorem 2)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# --------------------------------------------------------------------------- main
def main(cfg, ctx: RunContext) -> None:
    gen = torch.Generator().manual_seed(ctx.seed)
    metrics = ctx.metrics

    # 1. exactness of the Triton kernel (interpreted on a CPU, compiled on a GPU)
    from . import kernel

    metrics["kernel_mode"] = "triton interpreter (CPU)" if kernel.INTERPRET else "compiled (GPU)"
    rows = []
    for case in ctx.progress(cfg.exact_cases, desc="exactness"):
        rows.append(
            {"case": case, **compare_case(*parse_case(case), cfg.exact_heads, ctx.device, gen)}
        )
        metrics["exact_cases"] = rows
    low = [r for r in rows if not r["case"].endswith("fp32")]
    if low:
        metrics["max_fwd_err_ratio"] = max(r["out"]["ratio"] for r in low)
        metrics["max_bwd_err_ratio"] = max(r[g]["ratio"] for r in low for g in ("dq", "dk", "dv"))
    else:
        ctx.skip("exact-forward", "no fp16/bf16 case in exact_cases")
        ctx.skip("exact-backward", "no fp16/bf16 case in exact_cases")

    # 2. memory: tiled (or the kernel on a GPU) vs naive, forward + backward
    lengths = sorted(cfg.mem_lengths)
    points = []
    for n in ctx.progress(lengths, desc="memory"):
        points.append(
            memory_point(n, cfg.mem_head_dim, cfg.mem_block, cfg.mem_causal, ctx.device, gen)
        )
        metrics["memory"] = points
    metrics["memory_path"] = (
        "Triton kernel, torch.cuda.max_memory_allocated"
        if ctx.device.startswith("cuda")
        else "tiled reference, tracked tensor allocations"
    )
    metrics["memory_ratio_by_n"] = {
        str(p["n"]): p["naive_bytes"] / p["tiled_bytes"] for p in points
    }
    ns = [p["n"] for p in points]
    metrics["tiled_memory_slope"] = loglog_slope(ns, [p["tiled_bytes"] for p in points])
    metrics["naive_memory_slope"] = loglog_slope(ns, [p["naive_bytes"] for p in points])
    metrics["tiled_memory_exponent"] = growth_exponent(ns, [p["tiled_bytes"] for p in points])
    metrics["naive_memory_exponent"] = growth_exponent(ns, [p["naive_bytes"] for p in points])
    plot_memory(points, ctx.figure_path("memory.png"))

    # 3. IO: counted HBM accesses over on-chip memory sizes
    io_rows = []
    for kib in ctx.progress(cfg.io_sram_kib, desc="IO counts"):
        io_rows.append(io_counts(cfg.io_seq_len, cfg.io_head_dim, kib * 1024 // 2, gen))
        metrics["io"] = io_rows
    metrics["io_sram_exponent"] = loglog_slope(
        [r["sram_elements"] for r in io_rows], [r["flash_fwd"] for r in io_rows]
    )
    paper = io_counts(cfg.io_seq_len, cfg.io_head_dim, cfg.io_paper_sram_kib * 1024 // 2, gen)
    metrics["io_at_paper_sram"] = paper
    metrics["io_ratio_standard_over_flash"] = (paper["standard_fwd"] + paper["standard_bwd"]) / (
        paper["flash_fwd"] + paper["flash_bwd"]
    )
    metrics["io_ratio_forward_only"] = paper["standard_fwd"] / paper["flash_fwd"]
    plot_io(io_rows, ctx.figure_path("io.png"))

    # 4. speed, GPU only
    if ctx.device.startswith("cuda"):
        from .bench import speedup_vs_naive

        rounds = []  # one list of per-length results per timing round
        for _ in range(cfg.speed_rounds):
            rounds.append(
                [
                    speedup_vs_naive(n, cfg.speed_head_dim, cfg.speed_tokens)
                    for n in ctx.progress(cfg.speed_lengths, desc="speed")
                ]
            )
            metrics["speed"] = rounds
        # lengths where naive attention ran out of memory have no ratio and are left out
        per_round = [
            [s["speedup"] for s in speed if s["n"] >= 1024 and s["speedup"] is not None]
            for speed in rounds
        ]
        if all(per_round):
            metrics["min_speedup_vs_naive"] = [min(r) for r in per_round]
        else:
            ctx.skip("speed-fwd-bwd", "naive attention did not fit at any length ≥ 1k")
    else:
        ctx.skip("speed-fwd-bwd", "needs a GPU: on the CPU the kernel runs in Triton's interpreter")
