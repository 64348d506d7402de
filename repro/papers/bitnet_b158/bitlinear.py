"""Ternary (BitNet b1.58) and binary (BitNet) linear layers, trained with straight-through
gradients, and the addition-only way of computing a ternary layer.

Weights (BitNet b1.58, §2, "absmean" quantisation):

    γ = (1/nm) Σ_ij |W_ij|
    W̃ = RoundClip(W / (γ + ε), −1, 1),   RoundClip(x, a, b) = max(a, min(b, round(x)))

so every entry of W̃ is −1, 0 or +1 and the layer uses γ·W̃ in place of W.

Weights (BitNet, §2.1, binarisation): α = mean(W), β = (1/nm) Σ |W_ij|,
W̃ = Sign(W − α) ∈ {−1, +1}, and the layer uses β·W̃.

Activations (both papers): per-token absmax quantisation to b = 8 bits,

    x̃ = Clip(round(x · Q_b / γ_x), −Q_b, Q_b),   γ_x = ‖x‖_∞ (per token),   Q_b = 127

(BitNet b1.58 drops BitNet's shift of activations into a non-negative range; we use the
symmetric form for both). We use Q_b = 127 rather than the paper's 2^(b−1) = 128 so that the
codes fit a signed byte.

Straight-through estimator: the forward pass sees the quantised value, the backward pass treats
quantisation as the identity, ``q = w + (quant(w) − w).detach()``, so latent full-precision
weights receive the gradient of the quantised layer.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

EPS = 1e-5  # keeps the divisions finite for an all-zero weight matrix or token
Q_B = 127  # 8-bit activation codes in [−127, 127]


def absmean_ternary(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(W̃, γ): W̃ ∈ {−1, 0, +1} with W ≈ γ·W̃  (BitNet b1.58 absmean quantisation)."""
    gamma = w.abs().mean().clamp_min(EPS)
    return (w / gamma).round().clamp(-1, 1), gamma


def sign_binary(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(W̃, β): W̃ = Sign(W − mean W) ∈ {−1, +1}, β = mean |W|  (BitNet binarisation).
    A weight exactly at the mean goes to +1 so that no zero appears."""
    beta = w.abs().mean().clamp_min(EPS)
    return torch.where(w >= w.mean(), 1.0, -1.0).to(w.dtype), beta


def absmax_int8(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(codes, scale): integer-valued codes in [−Q_b, Q_b] with x ≈ codes · scale, one scale
    per token (last dimension)."""
    scale = x.abs().amax(dim=-1, keepdim=True).clamp_min(EPS) / Q_B  # (..., 1)
    return (x / scale).round().clamp(-Q_B, Q_B), scale


QUANTISERS = {"ternary": absmean_ternary, "binary": sign_binary}


class BitLinear(nn.Module):
    """A linear layer whose forward pass uses quantised weights and 8-bit activations while
    full-precision latent weights are trained (straight-through)."""

    def __init__(self, d_in: int, d_out: int, mode: str = "ternary", act_bits: bool = True):
        super().__init__()
        if mode not in QUANTISERS:
            raise ValueError(f"mode {mode!r}: use one of {sorted(QUANTISERS)}")
        self.weight = nn.Parameter(torch.empty(d_out, d_in))
        nn.init.normal_(self.weight, 0.0, 0.02)
        self.mode = mode
        self.act_bits = act_bits

    @classmethod
    def from_linear(cls, lin: nn.Linear, mode: str) -> BitLinear:
        if lin.bias is not None:
            raise ValueError("BitNet b1.58 layers have no bias; build the model with bias=False")
        out = cls(lin.in_features, lin.out_features, mode)
        out.weight.data.copy_(lin.weight.data)  # same start as the full-precision twin
        return out

    def quantised_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(W̃, scale) without gradient: the integer matrix and its one scale."""
        with torch.no_grad():
            return QUANTISERS[self.mode](self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w_int, w_scale = QUANTISERS[self.mode](self.weight)
        w = self.weight + (w_int * w_scale - self.weight).detach()  # straight-through
        if self.act_bits:
            x_int, x_scale = absmax_int8(x)
            x = x + (x_int * x_scale - x).detach()
        return F.linear(x, w)


def to_bit_layers(model: nn.Module, mode: str) -> nn.Module:
    """Replace every ``nn.Linear`` inside the Transformer blocks by a BitLinear with the same
    starting weights. Embeddings and the output head stay in full precision, as in both papers."""
    for block in model.blocks:
        for module in list(block.modules()):
            for child_name, child in list(module.named_children()):
                if isinstance(child, nn.Linear):
                    setattr(module, child_name, BitLinear.from_linear(child, mode))
    return model


# --------------------------------------------------------------------------- addition-only path
def addonly_ternary_int(x_int: torch.Tensor, w_int: torch.Tensor) -> torch.Tensor:
    """Y[t, j] = Σ_{i: W̃_ji = +1} x[t, i] − Σ_{i: W̃_ji = −1} x[t, i] for integer codes x.

    No activation is multiplied by a weight: for each output unit we gather the inputs its
    +1 weights select, add them, and subtract the sum of the inputs its −1 weights select;
    inputs facing a 0 weight are never touched. Integer arithmetic (int64), so the result
    is exact and can be compared with an integer matmul bit for bit.
    """
    x = x_int.to(torch.int64)
    out = torch.zeros(x.shape[0], w_int.shape[0], dtype=torch.int64)
    for j in range(w_int.shape[0]):
        plus = torch.nonzero(w_int[j] > 0).flatten()
        minus = torch.nonzero(w_int[j] < 0).flatten()
        out[:, j] = x.index_select(1, plus).sum(1) - x.index_select(1, minus).sum(1)
    return out


def addonly_forward(layer: BitLinear, x: torch.Tensor) -> torch.Tensor:
    """The layer's output computed through ``addonly_ternary_int``; the only products left are
    the rescaling of each output by (γ_w · γ_x/Q_b), one per output element."""
    w_int, w_scale = layer.quantised_weight()
    x2 = x.reshape(-1, x.shape[-1])  # (tokens, d_in)
    x_int, x_scale = absmax_int8(x2)
    y_int = addonly_ternary_int(x_int, w_int)
    return (y_int.to(x.dtype) * (x_scale * w_scale)).reshape(*x.shape[:-1], -1)
