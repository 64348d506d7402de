"""FlashAttention (Dao, Fu, Ermon, Rudra, Ré 2022, arXiv:2205.14135).

What is here: a Triton FlashAttention-2 kernel for the forward and backward pass
(``kernel.py``), the paper's Algorithms 0, 1, 3 and 4 written out in PyTorch (``reference.py``),
the claims below (``run.py``), a speed/memory benchmark (``bench.py``, ``repro bench
flash-attention``) and a walkthrough.

The kernel can be used the way the ``flash-attn`` package is: ``from repro.papers.flash_attention
import flash_attn_func, flash_attn_varlen_func`` take flash-attn's arguments and layouts
((batch, seqlen, nheads, headdim), or packed (total_tokens, nheads, headdim) with cu_seqlens),
both differentiable, with GQA/MQA (fewer K/V heads, read in place, their gradients summed over
each query group without atomics), variable-length batches without padding, sliding windows
``window_size=(left, right)`` whose out-of-window tiles are skipped, causal masks aligned
bottom-right, and head dims up to 256. Not implemented (NotImplementedError): attention
dropout, ALiBi, soft-capping; no KV-cache or paged-KV entry points. ``flash_attention`` keeps the
(B, H, N, D) layout of ``scaled_dot_product_attention``.

Claims checked. Six implementation checks (pass/fail) of our own code (kernel exactness, the
memory growth of our tiled reference, element counts of our algorithms' loads and stores) and
one finding, the paper's speed result, which only a GPU can measure:
  * Theorem 1 / §3.1: the tiled algorithm is exact: output and gradients of our Triton kernel
    match float64 attention as well as standard attention computed in the same low precision
    does (error at most 2×, 3× for gradients, the rule of FlashAttention's own test suite).
  * §3 and Fig. 3 (memory): extra memory grows linearly in N for the tiled algorithm and
    quadratically for standard attention; the ratio is reported at every N.
  * Theorem 2, Fig. 2: HBM traffic of Algorithm 1 falls as 1/M with the on-chip memory M, and at
    GPT-2 medium's attention shape it is many times lower than standard attention's. Counted
    element by element from the reference's loads and stores.
  * Finding, §4 / Fig. 3 (speed, GPU only): forward + backward at least 2× faster than
    standard PyTorch attention for N ≥ 1k. The sample is one value per timing round
    (``speed_rounds``: 3 in quick, 5 in full; each round times every length afresh and keeps
    its smallest speed-up at N ≥ 1k). A wall-clock timing: not compared by ``repro verify``.

On a CPU the kernel runs under Triton's interpreter (see kernel.py), so exactness is checked at
small shapes, with P and dS rounded to bf16/fp16 before their products as the GPU kernel does
(the interpreter would otherwise keep them in fp32, more accurate than what users get); memory is measured on the tiled reference by tracking tensor allocations, and
speed is not checked. Left out: dropout and the block-sparse variant (§3.3), and the end-to-end
training results (BERT, GPT-2, Long Range Arena), which need days of GPU time.
"""

from dataclasses import dataclass

from repro.claims import AtLeast, AtMost, Between, Claim, Reproduction

# The kernels import torch and triton, which `repro list` / `repro check` must not pay for:
# the public functions load on first use (``from repro.papers.flash_attention import
# flash_attn_func`` works as usual).
_KERNEL_API = ("flash_attn_func", "flash_attn_varlen_func", "flash_attention")


def __getattr__(name: str):
    if name in _KERNEL_API:
        from . import kernel

        return getattr(kernel, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class Config:
    # Exactness: cases "<N_q>x<N_k>-d<D>-<causal|full>-<fp16|bf16|fp32>" run through the kernel
    # (ragged lengths, N_q ≠ N_k both ways, non-power-of-two D, both low precisions).
    exact_cases: tuple[str, ...] = (
        "97x97-d64-full-fp16",
        "113x203-d80-causal-bf16",
        "200x200-d32-causal-fp16",
        "64x17-d128-full-bf16",
    )
    exact_heads: int = 2  # heads per case (batch 1); the kernel's grid covers (B·H) programs
    # Memory: forward + backward at each N, batch 1, one head (the ratio does not depend on B·H).
    mem_lengths: tuple[int, ...] = (1024, 2048, 4096)
    mem_head_dim: int = 64
    mem_block: int = 128  # query and key tile of the tiled reference on the CPU
    mem_causal: bool = True
    # IO: Algorithm 1 / 4 at one shape, on-chip memory M swept (KiB of fp16 elements).
    io_seq_len: int = 1024  # GPT-2 medium's sequence length (Fig. 2)
    io_head_dim: int = 64  # GPT-2 medium's head dim
    io_sram_kib: tuple[int, ...] = (8, 16, 32, 64, 128)  # B_c = M/4d = 16 ... 256 at d = 64
    io_paper_sram_kib: int = 100  # "M around 100KB" (§3.2), for the comparison with standard
    # Speed (GPU only): tokens per batch fixed, heads = 2048 / D (FlashAttention-2's setting).
    speed_lengths: tuple[int, ...] = (1024, 2048, 4096)
    speed_head_dim: int = 64
    speed_tokens: int = 16384
    speed_rounds: int = 3  # independent timing rounds: the finding's sample


REPRO = Reproduction(
    id="flash-attention",
    papers=("flash-attention",),
    title="FlashAttention: exact tiled attention, linear memory, fewer HBM accesses",
    config=Config,
    presets={
        "quick": {},
        "full": {
            "exact_cases": (
                "1x1-d16-causal-fp16",
                "17x17-d16-full-bf16",
                "64x64-d32-causal-fp16",
                "97x97-d64-full-fp16",
                "128x128-d96-causal-bf16",
                "200x200-d128-causal-fp16",
                "113x203-d80-causal-bf16",
                "203x113-d80-causal-fp16",
                "64x17-d128-full-bf16",
                "17x64-d64-causal-bf16",
                "200x200-d64-full-bf16",
                "128x128-d128-full-fp16",
            ),
            "mem_lengths": (1024, 2048, 4096, 8192, 16384),
            "io_sram_kib": (4, 8, 16, 32, 64, 128, 256),
            "speed_lengths": (1024, 2048, 4096, 8192, 16384),
            "speed_rounds": 5,
        },
    },
    claims=(
        Claim(
            id="exact-forward",
            kind="check",
            statement="our tiled forward kernel computes exact attention: its output is as "
            "close to float64 attention as standard attention in the same precision is",
            source="§3.1, Theorem 1",
            paper_value="exact (no approximation); rounding only",
            metric="max_fwd_err_ratio",
            # FlashAttention's test suite: our error ≤ 2× that of naive attention in fp16/bf16.
            rule=AtMost(2.0),
            unit="max over cases of err(ours) / err(naive, same dtype), fp16/bf16",
        ),
        Claim(
            id="exact-backward",
            kind="check",
            statement="our backward kernel, recomputing P from the stored log-sum-exp, gives "
            "exact gradients dQ, dK, dV",
            source="§3.1, Theorem 1; Appendix B (Algorithm 4)",
            paper_value="exact gradients",
            metric="max_bwd_err_ratio",
            # Same rule with 3× for gradients, as FlashAttention's tests use.
            rule=AtMost(3.0),
            unit="max over cases and dQ, dK, dV of err(ours) / err(naive, same dtype)",
        ),
        Claim(
            id="memory-linear",
            kind="check",
            statement="extra memory of our tiled algorithm (forward + backward) grows linearly "
            "with sequence length",
            source="§3 (memory), Fig. 3 right",
            paper_value="linear in N; 10× less than standard attention at 2K, 20× at 4K (A100)",
            metric="tiled_memory_exponent",
            # Exponent 1 ± 0.2: far enough from the baseline's 2 that linear and quadratic
            # cannot be confused, loose enough for allocator granularity.
            rule=Between(0.8, 1.2),
            unit="growth exponent of peak extra bytes in N",
        ),
        Claim(
            id="memory-quadratic-baseline",
            kind="check",
            statement="our standard attention's extra memory grows quadratically with sequence "
            "length",
            source="§1, §3",
            paper_value="quadratic in N",
            metric="naive_memory_exponent",
            rule=Between(1.8, 2.2),  # exponent 2 ± 0.2, as for the linear claim
            unit="growth exponent of peak extra bytes in N",
        ),
        Claim(
            id="io-inverse-sram",
            kind="check",
            statement="HBM reads and writes counted in our Algorithm 1 fall in proportion to 1/M "
            "as the on-chip memory M grows: Θ(N²d²/M)",
            source="Theorem 2, Fig. 2 middle",
            paper_value="Θ(N²d²M⁻¹); HBM accesses fall as the block size grows",
            metric="io_sram_exponent",
            # Exponent −1 ± 0.15: the Θ hides the M-independent reads of K and V (2Nd),
            # which flatten the slope a little where the blocks are large.
            rule=Between(-1.15, -0.85),
            unit="log-log slope of counted accesses vs M",
        ),
        Claim(
            id="io-fewer-than-standard",
            kind="check",
            statement="at GPT-2 medium's attention shape (N = 1024, d = 64) and M ≈ 100 KB, "
            "our FlashAttention algorithms move many times fewer elements to and from HBM than "
            "our standard attention (forward + backward), counted element by element",
            source="§3.2, Fig. 2 left",
            paper_value="40.3 GB vs 4.4 GB HBM R/W (9.2× fewer), A100, fwd + bwd",
            metric="io_ratio_standard_over_flash",
            # "many times fewer" (§3.2): at least 3×. The paper's 9.2× was measured against
            # PyTorch's unfused attention, which makes more passes than Algorithm 0 counted here.
            rule=AtLeast(3.0),
            unit="accesses of Algorithms 0+3 / accesses of Algorithms 1+4",
        ),
        Claim(
            id="speed-fwd-bwd",
            kind="finding",
            statement="forward + backward is at least 2× faster than standard PyTorch attention "
            "for sequence lengths of 1k and more",
            source="§4, Fig. 3 left",
            paper_value="2–4× faster than PyTorch attention (A100, fwd + bwd)",
            metric="min_speedup_vs_naive",
            rule=AtLeast(2.0),  # the low end of the paper's 2–4× range
            unit="min over N ≥ 1k of time(naive) / time(ours), per timing round",
            gpu_only=True,
            verify_rtol=None,  # a timing: depends on the machine and its load
        ),
    ),
    bench="bench:main",
    timeout_s=240,  # quick takes ~20 s of CPU; the margin is for a loaded machine
)
