# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # FlashAttention, step by step
#
# *Dao, Fu, Ermon, Rudra, Ré (2022), [arXiv:2205.14135](https://arxiv.org/abs/2205.14135).*
#
# Standard attention writes the N×N score matrix S and the probabilities P to GPU memory and
# reads them back; at long sequence lengths that traffic, not the arithmetic, is the cost, and
# the memory is quadratic in N. FlashAttention computes exactly the same result tile by tile,
# keeping the tiles in on-chip memory and never writing S or P anywhere.
#
# This page builds the one idea that makes this possible (the online softmax), points at the
# lines of our Triton kernel that implement it, runs the kernel (here on a CPU through Triton's
# interpreter), and measures the memory and the memory traffic at a small scale. The claims at
# full scale are run by `repro flash-attention`; the GPU benchmark by
# `repro bench flash-attention`.

# %%
import inspect
import math

import matplotlib.pyplot as plt
import torch

from repro.papers.flash_attention import kernel
from repro.papers.flash_attention import reference as ref
from repro.papers.flash_attention.run import io_counts, memory_point

torch.manual_seed(0)
print("kernel mode:", "Triton interpreter (CPU)" if kernel.INTERPRET else "compiled (GPU)")

# %% [markdown]
# ## 1. Softmax one block at a time
#
# For one query row with scores $s_1, \dots, s_N$, attention is
# $o = \sum_j \frac{e^{s_j}}{\sum_k e^{s_k}} v_j$. Split the keys into blocks. After the
# blocks seen so far, keep three things: the running maximum $m$, the running normaliser
# $\ell = \sum_j e^{s_j - m}$ and the un-normalised output $a = \sum_j e^{s_j - m} v_j$.
# A new block with scores $s^{(b)}$ and values $V^{(b)}$ updates them as
#
# $$m' = \max\big(m, \max_j s^{(b)}_j\big),\qquad
#   \ell' = e^{m - m'}\,\ell + \sum_j e^{s^{(b)}_j - m'},\qquad
#   a' = e^{m - m'}\,a + \sum_j e^{s^{(b)}_j - m'}\,v^{(b)}_j .$$
#
# The factor $e^{m - m'}$ rescales everything accumulated under the old maximum to the new one,
# so at the end $o = a / \ell$ exactly: no approximation, only a different order of the same
# sums (Theorem 1). Subtracting the maximum keeps every exponent ≤ 0, so nothing overflows.


# %%
def online_softmax_attention(s: torch.Tensor, v: torch.Tensor, block: int) -> torch.Tensor:
    """One query row: scores s (N,), values v (N, d); visits the keys `block` at a time."""
    m, l, acc = torch.tensor(float("-inf")), torch.tensor(0.0), torch.zeros(v.shape[1])
    for start in range(0, len(s), block):
        s_b, v_b = s[start : start + block], v[start : start + block]
        m_new = torch.maximum(m, s_b.max())
        alpha = torch.exp(m - m_new)  # rescales the old sums to the new maximum
        p = torch.exp(s_b - m_new)
        l = alpha * l + p.sum()
        acc = alpha * acc + p @ v_b
        m = m_new
    return acc / l


s, v = 3 * torch.randn(1000, dtype=torch.float64), torch.randn(1000, 16, dtype=torch.float64)
full = torch.softmax(s, 0) @ v
for block in (1, 7, 64, 1000):
    err = (online_softmax_attention(s, v, block) - full).abs().max().item()
    print(f"block {block:4d}: max |online − full softmax| = {err:.1e}")

# %% [markdown]
# ## 2. The same update in the Triton kernel
#
# The kernel runs one program per block of `BLOCK_M` queries; each loops over blocks of
# `BLOCK_N` keys with exactly the update above, vectorised over the rows of the query block
# (`m_i`, `l_i` are vectors, `acc` is `BLOCK_M × HEAD_DIM`). Two differences from the sketch:
# exponentials are base 2 (`exp2` is a single GPU instruction; the scores are multiplied by
# $\log_2 e$ once), and the diagonal and ragged tiles are masked with $-\infty$, which needs a
# guard when a row has seen no key yet.

# %%
print(inspect.getsource(kernel._fwd_inner.fn))

# %% [markdown]
# At the end each row is normalised once, $O_i = \text{acc}/\ell_i$, and the log-sum-exp
# $L_i = m_i + \log \ell_i$ is stored: N numbers instead of the N×N matrix P. The backward pass
# recomputes each tile of $P = \exp(S - L)$ from Q, K and L, and with
# $D_i = \sum_d dO_{id}\,O_{id}$ gets every gradient from tiles:
#
# $$dV = P^\top dO,\quad dP = dO\,V^\top,\quad dS = P \circ (dP - D),\quad
#   dQ = \tau\, dS\,K,\quad dK = \tau\, dS^\top Q$$
#
# with $\tau$ the softmax scale. Recomputing is cheaper than reading P back from memory.

# %% [markdown]
# ## 3. Exact: the kernel against float64 attention
#
# FlashAttention's own tests accept a low-precision kernel when its error against a float64
# reference is at most twice (three times for gradients) the error of standard attention run in
# the same low precision. Here is one ragged, causal case with N_q ≠ N_k and a head dim that is
# not a power of two. (Causal masks are aligned bottom-right: the queries are the last N_q
# positions of the keys, as when decoding with a KV cache.)


# %%
def errors(n_q, n_k, d, causal, dtype):
    q, k, v = (torch.randn(1, 2, n, d).to(dtype) for n in (n_q, n_k, n_k))
    do = torch.randn(1, 2, n_q, d).to(dtype)
    out = {}
    for name, fn, cast in (
        ("float64", ref.naive_attention, torch.float64),
        ("naive", ref.naive_attention, dtype),
        ("ours", kernel.flash_attention, dtype),
    ):
        leaves = [x.detach().to(cast).requires_grad_() for x in (q, k, v)]
        o = fn(*leaves, causal=causal)
        o.backward(do.to(cast))
        out[name] = [o.detach()] + [x.grad for x in leaves]
    for i, what in enumerate(("O", "dQ", "dK", "dV")):
        r = out["float64"][i]
        e_ours = (out["ours"][i].double() - r).abs().max().item()
        e_naive = (out["naive"][i].double() - r).abs().max().item()
        print(
            f"{what:3s} error: ours {e_ours:.2e}   naive {str(dtype)[6:]} {e_naive:.2e}"
            f"   ratio {e_ours / e_naive:.2f}"
        )


errors(n_q=113, n_k=203, d=80, causal=True, dtype=torch.float16)

# %% [markdown]
# ## 4. Memory: linear against quadratic
#
# Forward + backward of standard attention keeps S, P and their gradients: memory ∝ N². The
# tiled algorithm (here the paper's Algorithm 1 and 4 in plain PyTorch, `reference.py`) keeps
# O, the log-sum-exp and the gradients: ∝ N·d, plus a few tiles. We count the bytes of every
# tensor PyTorch allocates during the call (a dispatch mode sees each op's output, a weakref
# sees it freed) and take the peak. Small N here; `repro flash-attention --preset full` goes to
# 16k.

# %%
gen = torch.Generator().manual_seed(0)
points = [memory_point(n, 64, 128, True, "cpu", gen) for n in (256, 512, 1024, 2048)]
ns = [p["n"] for p in points]
fig, ax = plt.subplots(figsize=(5, 3.4))
ax.loglog(ns, [p["naive_bytes"] / 2**20 for p in points], "o-", label="standard")
ax.loglog(ns, [p["tiled_bytes"] / 2**20 for p in points], "s-", label="tiled (FlashAttention)")
ax.set_xticks(ns, [str(n) for n in ns])
ax.set_xlabel("sequence length N")
ax.set_ylabel("peak extra MiB, fwd + bwd")
ax.legend()
plt.show()
for p in points:
    print(f"N={p['n']:5d}: standard uses {p['naive_bytes'] / p['tiled_bytes']:5.1f}× the memory")

# %% [markdown]
# ## 5. Memory traffic: Θ(N²d²/M) against Θ(Nd + N²)
#
# With on-chip memory of M elements, Algorithm 1 takes key blocks of $B_c = \lceil M/4d\rceil$
# rows and for each of the $T_c = N/B_c$ key blocks reads and writes every query block once:
# about $T_c \cdot 3Nd \approx 12N^2d^2/M$ elements. Standard attention moves $4Nd + 4N^2$.
# Counting the loads and stores the reference actually makes (`reference.HBM`):

# %%
rows = [io_counts(512, 64, kib * 512, gen) for kib in (8, 16, 32, 64, 128)]
for r in rows:
    print(
        f"M = {r['sram_elements'] * 2 // 1024:3d} KiB  B_c = {r['block_c']:3d}  "
        f"FlashAttention fwd {r['flash_fwd'] / 1e6:5.2f} M elements   "
        f"standard fwd {r['standard_fwd'] / 1e6:5.2f} M"
    )
slope = (math.log(rows[-1]["flash_fwd"]) - math.log(rows[0]["flash_fwd"])) / math.log(16)
print(f"log-log slope over M: {slope:.2f} (Theorem 2: −1)")

# %% [markdown]
# At N = 512 the standard algorithm's N² term is still small, so FlashAttention only wins once
# M is large enough. At GPT-2 medium's attention shape (N = 1024, d = 64) and M ≈ 100 KB, the
# setting of the paper's Fig. 2, forward + backward:

# %%
r = io_counts(1024, 64, 100 * 512, gen)
flash, standard = r["flash_fwd"] + r["flash_bwd"], r["standard_fwd"] + r["standard_bwd"]
print(
    f"FlashAttention {flash / 1e6:.2f} M elements, standard {standard / 1e6:.2f} M: "
    f"{standard / flash:.1f}× fewer"
)

# %% [markdown]
# The paper measured 9.2× (40.3 GB against 4.4 GB on an A100) against PyTorch's unfused
# attention, which makes more passes over memory than the minimal Algorithm 0 counted here.
#
# What a CPU cannot show is speed: that needs the compiled kernel on a GPU,
# `repro bench flash-attention`.
