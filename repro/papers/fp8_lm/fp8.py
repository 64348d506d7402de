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
        # only the output gradients' casts are counted (the underflow findings read those)
        xq = cast(x, mode, E4M3, margin)
        wq = cast(w, mode, E4M3, margin)
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


# --------------------------------------------------------------------------- FP8 optimiser
FP16 = torch.float16
LOW_MAX = {**FP8_MAX, FP16: torch.finfo(FP16).max}  # 65504 for FP16


def store_scaled(x: torch.Tensor, dtype: torch.dtype, scaled: bool = True, margin: int = 0):
    """(q, s): ``x`` kept as a ``dtype`` tensor ``q`` with one float32 scale ``s`` per tensor,
    x ≈ q / s. With ``scaled`` the scale puts amax(|x|) at the top of the format (FP8-LM §2.1,
    "tensor scaling"); without it s = 1 and small entries underflow."""
    s = torch.ones((), dtype=torch.float32)
    if scaled:
        amax = x.detach().abs().amax().float()
        if amax > 0:
            s = LOW_MAX[dtype] / amax * 2.0**-margin
    return (x.float() * s).to(dtype), s


def load_scaled(q: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    return q.float() / s


class FP8AdamW(torch.optim.Optimizer):
    """AdamW whose state follows FP8-LM's FP8 optimiser (§2.2, MS-AMP level O2/O3) for the
    parameters marked low-precision, and plain float32 AdamW for the others:

      weight gradient    FP8 (E4M3) with a per-tensor scale (the tensor FP8-LM all-reduces)
      first moment  m    FP8 (E4M3) with a per-tensor scale
      second moment v    FP16 with a per-tensor scale
      master weight w    FP16 with a per-tensor scale

    6 bytes per parameter instead of 16 (float32 weight, gradient, m and v). Every step
    reads each stored tensor back (dequantises), updates in float32 as AdamW does, and stores
    the results in their formats again; the model's weight is the dequantised master weight.
    ``scaled=False`` keeps every scale at 1 (the ablation). Gradient all-reduce itself is not
    simulated (one process): the gradient is quantised as the tensor that would be sent.
    """

    def __init__(
        self,
        params,
        low_precision,
        lr=1e-3,
        betas=(0.9, 0.95),
        eps=1e-8,
        weight_decay=0.0,
        scaled: bool = True,
        margin: int = 0,
    ):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.low = {id(p) for p in low_precision}
        self.scaled, self.margin = scaled, margin
        self.grad_stats = CastStats()  # weight-gradient entries flushed to zero by the FP8 cast

    def _store(self, x, dtype):
        return store_scaled(x, dtype, self.scaled, self.margin)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                low = id(p) in self.low
                if not st:
                    st["step"] = 0
                    if low:
                        st["w"], st["w_scale"] = self._store(p.detach(), FP16)
                        st["m"], st["m_scale"] = self._store(torch.zeros_like(p), E4M3)
                        st["v"], st["v_scale"] = self._store(torch.zeros_like(p), FP16)
                    else:
                        st["m"], st["v"] = torch.zeros_like(p), torch.zeros_like(p)
                st["step"] += 1
                t = st["step"]
                if low:
                    st["grad"], st["grad_scale"] = self._store(p.grad, E4M3)
                    g = load_scaled(st["grad"], st["grad_scale"])
                    self.grad_stats.add("weight_gradient", p.grad, g, FP8_MAX[E4M3])
                    w = load_scaled(st["w"], st["w_scale"])
                    m = load_scaled(st["m"], st["m_scale"])
                    v = load_scaled(st["v"], st["v_scale"])
                else:
                    g, w, m, v = p.grad, p.detach().clone(), st["m"], st["v"]
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                denom = (v / (1 - b2**t)).sqrt_().add_(group["eps"])
                w.mul_(1 - group["lr"] * group["weight_decay"])
                w.addcdiv_(m, denom, value=-group["lr"] / (1 - b1**t))
                if low:
                    st["w"], st["w_scale"] = self._store(w, FP16)
                    st["m"], st["m_scale"] = self._store(m, E4M3)
                    st["v"], st["v_scale"] = self._store(v, FP16)
                    p.copy_(load_scaled(st["w"], st["w_scale"]))
                else:
                    p.copy_(w)


def training_state_bytes(params, optimizer) -> int:
    """Bytes of everything training keeps per parameter, from the tensors themselves: for a
    parameter the FP8 optimiser manages, its stored master weight, gradient, m and v (and their
    scales); otherwise the float32 weight, its gradient and the optimiser's state tensors."""
    total = 0
    for p in params:
        st = optimizer.state.get(p, {})
        if "w" in st:  # FP8AdamW low-precision parameter: the float32 ``p`` is a working copy
            tensors = [
                st[k]
                for k in ("w", "w_scale", "grad", "grad_scale", "m", "m_scale", "v", "v_scale")
            ]
        else:
            tensors = [p] + ([p.grad] if p.grad is not None else [])
            tensors += [v for v in st.values() if torch.is_tensor(v) and v.numel() == p.numel()]
        total += sum(x.numel() * x.element_size() for x in tensors)
    return total
