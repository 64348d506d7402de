"""RMSNorm and, for a fair race, LayerNorm written from the same elementary tensor operations.

Both are checked against PyTorch's own modules (``torch.nn.RMSNorm``, ``torch.nn.LayerNorm``)
in the run and in the tests. The speed comparison pits our two against each other: they are
written at the same level, as the paper's were (both in the same framework, neither a
hand-fused kernel), so the difference is the work each does, not who wrote the better kernel.
PyTorch's LayerNorm on the CPU is one fused C++ kernel while its RMSNorm is built from
several operations, so library-against-library timings mostly measure that; the benchmark
reports them separately.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def rms_norm(x: torch.Tensor, gain: torch.Tensor, eps: float) -> torch.Tensor:
    """ā_i = a_i / RMS(a) · g_i,   RMS(a) = sqrt(1/n Σ_i a_i² + ε)   (eq. 4).

    One reduction (the mean of squares); no mean subtraction, no bias.
    """
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * gain


def layer_norm(x: torch.Tensor, gain: torch.Tensor, bias: torch.Tensor, eps: float):
    """ā_i = (a_i − μ) / σ · g_i + b_i,  μ = 1/n Σ a_i,  σ = sqrt(1/n Σ (a_i − μ)² + ε)  (eq. 2).

    Two reductions (the mean, then the variance of the centred vector) and a bias.
    """
    mu = x.mean(-1, keepdim=True)
    xc = x - mu
    return xc * torch.rsqrt(xc.pow(2).mean(-1, keepdim=True) + eps) * gain + bias


class RMSNorm(nn.Module):
    """Re-scaling only: invariant to a ×λ of the input, not to a shift (Table 1 of the paper)."""

    def __init__(self, d: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.weight, self.eps)


class LayerNorm(nn.Module):
    """Re-centring and re-scaling: invariant to both a ×λ and a shift of the input."""

    def __init__(self, d: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))
        self.bias = nn.Parameter(torch.zeros(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return layer_norm(x, self.weight, self.bias, self.eps)


def make(kind: str, d: int) -> nn.Module:
    """Our norms and the library's, by name, so the run and the benchmark can race any pair."""
    if kind == "rmsnorm":
        return RMSNorm(d)
    if kind == "layernorm":
        return LayerNorm(d)
    if kind == "torch-rmsnorm":
        return nn.RMSNorm(d, eps=1e-6)
    if kind == "torch-layernorm":
        return nn.LayerNorm(d)
    raise ValueError(f"norm {kind!r}: use rmsnorm, layernorm, torch-rmsnorm or torch-layernorm")


def swap_norms(model: nn.Module, kind: str) -> nn.Module:
    """Replace every ``nn.LayerNorm`` in ``model`` by ``make(kind, d)`` (in place)."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.LayerNorm):
            setattr(model, name, make(kind, child.normalized_shape[0]))
        else:
            swap_norms(child, kind)
    return model
