"""FP8 matrix products simulated on the CPU with torch's float8 dtypes.

Each linear layer casts its matmul inputs to FP8 and back to float32 before multiplying, so the
product sees exactly the values an FP8 tensor core would read (accumulation stays in float32,
as on the hardware). Forward inputs (activations, weights) use E4M3, which has more mantissa;
the output gradient in the backward pass uses E5M2, which has more range (FP8-LM §2, following
Micikevicius et al. 2022).

Per-tensor scaling (FP8-LM §2.1): before the cast a tensor is multiplied by

    s = FP8_MAX / amax(|x|) · 2^(−margin)

so its largest entry lands near the top of the format, and divided by s after it. Without it,
a tensor whose entries are small (weights ~0.02, gradients ~1e-5) falls into the subnormal
range or below the smallest subnormal and is flushed to zero (underflow); entries above
FP8_MAX saturate (E4M3) or become inf (E5M2) (overflow). We compute s from the current tensor
("just-in-time" scaling); FP8-LM and Transformer Engine use the amax history of earlier steps
("delayed" scaling), which differs only when amax jumps between steps.
"""

from __future__ import annotations

import torch
import torch.nn as nn

E4M3 = torch.float8_e4m3fn
E5M2 = torch.float8_e5m2
FP8_MAX = {E4M3: torch.finfo(E4M3).max, E5M2: torch.finfo(E5M2).max}  # 448, 57344
MODES = ("fp32", "bf16", "fp8", "fp8_unscaled")


class CastStats:
    """Counts, per cast kind, how many nonzero entries became zero (underflow) and how many
    became inf/NaN or hit the format's maximum (overflow)."""

    def __init__(self):
        self.counts: dict[str, list[int]] = {}

    def add(self, kind: str, x: torch.Tensor, q: torch.Tensor, fmax: float) -> None:
        c = self.counts.setdefault(kind, [0, 0, 0])  # nonzero inputs, flushed, overflowed
        nz = x != 0
        c[0] += int(nz.sum())
        c[1] += int((nz & (q == 0)).sum())
        c[2] += int((~torch.isfinite(q) | (q.abs() >= fmax) & (x.abs() > fmax)).sum())

    def fractions(self) -> dict[str, dict[str, float]]:
        return {
            k: {"underflow": f / max(n, 1), "overflow": o / max(n, 1)}
            for k, (n, f, o) in self.counts.items()
        }


def cast(
    x: torch.Tensor,
    mode: str,
    fp8: torch.dtype,
    margin: int = 0,
    stats: CastStats | None = None,
    kind: str = "",
) -> torch.Tensor:
    """The value a matmul reads when its input ``x`` is stored in the given precision."""
    if mode == "fp32":
        return x
    if mode == "bf16":
        return x.to(torch.bfloat16).to(x.dtype)
    if mode == "fp8":
        amax = x.detach().abs().amax().clamp_min(1e-12)
        s = FP8_MAX[fp8] / amax * 2.0**-margin
        q8 = (x * s).to(fp8)
        q = q8.to(x.dtype) / s
        if stats is not None:
            stats.add(kind, x * s, q8.to(x.dtype), FP8_MAX[fp8])
        return q
    if mode == "fp8_unscaled":
        q = x.to(fp8).to(x.dtype)
        if stats is not None:
            stats.add(kind, x, q, FP8_MAX[fp8])
        return q
    raise ValueError(f"mode {mode!r}: use one of {MODES}")


class _LowPrecisionLinear(torch.autograd.Function):
    """y = Q₄(x) Q₄(W)ᵀ;  ∂L/∂x = Q₅(g) Q₄(W);  ∂L/∂W = Q₅(g)ᵀ Q₄(x),
    with Q₄ the E4M3 cast, Q₅ the E5M2 cast and g = ∂L/∂y."""

    @staticmethod
    def forward(ctx, x, w, mode, margin, stats):
        xq = cast(x, mode, E4M3, margin, stats, "activation")
        wq = cast(w, mode, E4M3, margin, stats, "weight")
        ctx.save_for_backward(xq, wq)
        ctx.mode, ctx.margin, ctx.stats = mode, margin, stats
        return xq @ wq.T

    @staticmethod
    def backward(ctx, g):
        xq, wq = ctx.saved_tensors
        gq = cast(g, ctx.mode, E5M2, ctx.margin, ctx.stats, "gradient")
        grad_x = gq @ wq
        grad_w = gq.reshape(-1, gq.shape[-1]).T @ xq.reshape(-1, xq.shape[-1])  # (out, in)
        return grad_x, grad_w, None, None, None


class LowPrecisionLinear(nn.Module):
    """A bias-free linear layer whose matmuls read inputs in ``mode`` precision; the master
    weight stays float32 and the optimiser updates it in float32."""

    def __init__(self, lin: nn.Linear, mode: str, margin: int = 0, stats=None):
        super().__init__()
        if lin.bias is not None:
            raise ValueError("build the model with bias=False")
        self.weight = nn.Parameter(lin.weight.detach().clone())
        self.mode, self.margin, self.stats = mode, margin, stats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _LowPrecisionLinear.apply(x, self.weight, self.mode, self.margin, self.stats)


def to_low_precision(model: nn.Module, mode: str, margin: int = 0, stats=None) -> nn.Module:
    """Swap every linear layer inside the Transformer blocks. Embeddings and the output head
    stay float32 (FP8-LM, like Transformer Engine, runs the blocks' GEMMs in FP8)."""
    for block in model.blocks:
        for module in list(block.modules()):
            for name, child in list(module.named_children()):
                if isinstance(child, nn.Linear):
                    setattr(module, name, LowPrecisionLinear(child, mode, margin, stats))
    return model
