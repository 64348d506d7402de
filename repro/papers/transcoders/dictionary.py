"""Transcoders and sparse autoencoders: one sparse dictionary, two ways to use it.

Both are a single wide ReLU layer followed by a linear read-out (Dunefsky et al. 2024, §3.1):

    z(x)   = ReLU(W_enc x' + b_enc)           the feature activations, (N, n_features)
    out(z) = W_dec z + b_dec                   the prediction, (N, d_model)

    transcoder:  x' = x_in (the MLP's input, after its pre-norm); target = MLP(x_in)
    SAE:         x' = y − b_dec (y = the MLP's output);            target = y

trained on  L = ‖target − out(z)‖² + λ ‖z‖₁  with every decoder column ‖W_dec[:, i]‖ = 1, so
that the L1 penalty cannot be dodged by shrinking z and growing W_dec.

Inputs and targets are divided by a fixed scale (root mean squared norm of the training data)
before the dictionary sees them, and the prediction is multiplied back, so that one λ means
the same trade-off whatever the scale of the LM's activations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


class SparseDictionary(nn.Module):
    """kind: "transcoder" (maps the MLP input to the MLP output) or "sae" (maps the MLP
    output to itself). ``in_scale``/``out_scale`` are the fixed normalising constants."""

    def __init__(
        self,
        kind: str,
        d_model: int,
        n_features: int,
        in_scale: float = 1.0,
        out_scale: float = 1.0,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if kind not in ("transcoder", "sae"):
            raise ValueError(f"kind {kind!r}: use 'transcoder' or 'sae'")
        self.kind = kind
        w_dec = torch.randn(d_model, n_features, generator=generator)
        w_enc = torch.randn(n_features, d_model, generator=generator)
        self.W_dec = nn.Parameter(w_dec / w_dec.norm(dim=0, keepdim=True))
        # rows of norm 1/√d·√d = O(1) pre-activations for unit-norm inputs
        self.W_enc = nn.Parameter(w_enc / w_enc.norm(dim=1, keepdim=True))
        self.b_enc = nn.Parameter(torch.zeros(n_features))
        self.b_dec = nn.Parameter(torch.zeros(d_model))
        self.register_buffer("in_scale", torch.tensor(float(in_scale)))
        self.register_buffer("out_scale", torch.tensor(float(out_scale)))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """z = ReLU(W_enc x' + b_enc); x is in the LM's units."""
        x = x / self.in_scale
        if self.kind == "sae":  # reconstruct around the decoder bias (Bricken et al. 2023)
            x = x - self.b_dec
        return F.relu(F.linear(x, self.W_enc, self.b_enc))

    def decode_normalised(self, z: torch.Tensor) -> torch.Tensor:
        return F.linear(z, self.W_dec, self.b_dec)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """W_dec z + b_dec, back in the LM's units."""
        return self.decode_normalised(z) * self.out_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def feature_output(self, i: int) -> torch.Tensor:
        """What one unit of feature i adds to the residual stream: out_scale · W_dec[:, i]."""
        return self.W_dec[:, i] * self.out_scale

    def feature_input(self, j: int) -> torch.Tensor:
        """The direction feature j reads from its input: W_enc[j] / in_scale (transcoder)."""
        return self.W_enc[j] / self.in_scale

    @torch.no_grad()
    def normalise_decoder(self) -> None:
        self.W_dec.div_(self.W_dec.norm(dim=0, keepdim=True).clamp_min(1e-12))

    @torch.no_grad()
    def project_decoder_grad(self) -> None:
        """Remove the part of each column's gradient along the column, the part that only
        changes its norm (which normalise_decoder would undo anyway)."""
        g, w = self.W_dec.grad, self.W_dec
        if g is not None:
            g.sub_(w * (g * w).sum(0, keepdim=True))


def l0(z: torch.Tensor) -> float:
    """Mean number of active (non-zero) features per token."""
    return (z > 0).sum(-1).float().mean().item()


def fvu(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of variance unexplained: Σ‖target − pred‖² / Σ‖target − mean(target)‖²."""
    resid = (target - pred).pow(2).sum()
    total = (target - target.mean(0)).pow(2).sum()
    return (resid / total).item()


def rms_norm_of(x: torch.Tensor) -> float:
    """sqrt(E‖x‖²) over rows: the scale that makes the mean squared norm 1."""
    return x.pow(2).sum(-1).mean().sqrt().item()


@dataclass(frozen=True)
class TrainSettings:
    n_features: int
    l1: float  # λ
    steps: int
    batch: int
    lr: float


def train_dictionary(
    kind: str,
    x_in: torch.Tensor,
    target: torch.Tensor,
    s: TrainSettings,
    generator: torch.Generator,
    progress: Callable | None = None,
) -> tuple[SparseDictionary, list[float]]:
    """Fit a transcoder (x_in = MLP input) or SAE (x_in = target = MLP output) with Adam;
    returns the dictionary and the loss per step (normalised units)."""
    d = x_in.shape[-1]
    in_scale, out_scale = rms_norm_of(x_in), rms_norm_of(target)
    dic = SparseDictionary(kind, d, s.n_features, in_scale, out_scale, generator)
    with torch.no_grad():  # start at the mean prediction, so features only model deviations
        dic.b_dec.copy_(target.mean(0) / out_scale)
    opt = torch.optim.Adam(dic.parameters(), lr=s.lr)
    losses = []
    steps = range(s.steps) if progress is None else progress(range(s.steps), desc=f"{kind}")
    for step in steps:
        # last fifth: linear decay to 0, which settles the noisy L1 trade-off
        frac = step / max(1, s.steps)
        for g in opt.param_groups:
            g["lr"] = s.lr * min(1.0, 5 * (1 - frac))
        idx = torch.randint(0, x_in.shape[0], (s.batch,), generator=generator)
        z = dic.encode(x_in[idx])
        pred = dic.decode_normalised(z)
        mse = (pred - target[idx] / out_scale).pow(2).sum(-1).mean()
        loss = mse + s.l1 * z.sum(-1).mean()  # z ≥ 0, so Σz = ‖z‖₁
        opt.zero_grad(set_to_none=True)
        loss.backward()
        dic.project_decoder_grad()
        opt.step()
        dic.normalise_decoder()
        losses.append(loss.item())
    return dic, losses


# --------------------------------------------------------------------------- splicing
def splice_hook(dic: SparseDictionary) -> Callable:
    """A forward hook for the MLP sub-layer that replaces its output by the dictionary's:
    TC(MLP input) for a transcoder, SAE(MLP output) for an SAE."""

    def hook(module, inputs, output):
        return dic(inputs[0]) if dic.kind == "transcoder" else dic(output)

    return hook


def constant_hook(value: torch.Tensor) -> Callable:
    """Replace the MLP's output by a constant vector (mean ablation)."""

    def hook(module, inputs, output):
        return value.expand_as(output)

    return hook


# --------------------------------------------------------------------------- circuits
def layernorm_frozen(ln: nn.LayerNorm, v: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """LayerNorm with the per-token scale σ given from outside: γ ⊙ (v − mean(v)) / σ + β.
    Centring and the gain are linear; only σ depends on the input, and circuit analyses
    (the paper's §4.1 among them) hold it fixed at its value on the input at hand."""
    centred = v - v.mean(-1, keepdim=True)
    return ln.weight * centred / sigma + ln.bias


def layernorm_sigma(ln: nn.LayerNorm, v: torch.Tensor) -> torch.Tensor:
    """The σ that ``ln`` divides by on v, shape (N, 1)."""
    return (v.var(-1, keepdim=True, unbiased=False) + ln.eps).sqrt()


def input_invariant_weights(
    early: SparseDictionary, late: SparseDictionary, ln: nn.LayerNorm
) -> torch.Tensor:
    """The paper's input-invariant connection between transcoder features (§4.1),
    w_ij = f_enc(late, j) · f_dec(early, i), with the later layer's LayerNorm centring and gain
    folded in: w_ij = (γ ⊙ f_enc_j) · (f_dec_i − mean(f_dec_i)).  Shape (n_late, n_early)."""
    f_dec = early.W_dec * early.out_scale  # (d, n_early): column i is f_dec_i
    f_dec = f_dec - f_dec.mean(0, keepdim=True)
    f_enc = late.W_enc * ln.weight / late.in_scale  # (n_late, d): row j is γ ⊙ f_enc_j
    return f_enc @ f_dec


def direct_attribution(
    early: SparseDictionary,
    late: SparseDictionary,
    ln: nn.LayerNorm,
    resid: torch.Tensor,
    z_early: torch.Tensor,
    i: int,
    j: int,
) -> torch.Tensor:
    """Measured contribution of early feature i to late feature j's pre-activation along the
    direct residual path, per token: pre_j(r) − pre_j(r − z_i f_dec_i), with the late layer's
    LayerNorm scale frozen at its value on r. ``resid`` is the residual stream that feeds the
    late MLP's LayerNorm, (N, d); ``z_early`` the early features on those tokens, (N, n)."""
    sigma = layernorm_sigma(ln, resid)
    piece = z_early[:, i : i + 1] * early.feature_output(i)  # (N, d)

    def pre(v):
        return F.linear(layernorm_frozen(ln, v, sigma) / late.in_scale, late.W_enc, late.b_enc)

    return pre(resid)[:, j] - pre(resid - piece)[:, j]
