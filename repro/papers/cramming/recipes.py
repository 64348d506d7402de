"""The two pretraining recipes as named presets, each setting with the reason it is there.

Torch-free, so the declaration and the CLI's ``--dry_run`` can show them without importing torch.
Schedules are functions of t, the elapsed fraction of the budget (wall-clock, or steps when a
fixed step count is given), which is what lets one recipe run for 2 minutes or 24 hours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Recipe:
    name: str
    # architecture switches (see model.ModelConfig)
    norm: Literal["pre", "post"]
    bias: bool
    ffn_kind: Literal["glu", "gelu"]
    final_norm: bool
    pos_embedding: str
    head_transform: bool
    decoder_bias: bool
    sparse_prediction: bool
    dropout: float
    # objective
    mask_rate: float
    mask_80_10_10: bool
    # optimiser (AdamW; weight decay skips biases and norms in both)
    lr: float
    betas: tuple[float, float]
    eps: float
    weight_decay: float
    clip: float | None
    # schedules over t ∈ [0, 1]
    schedule: Literal["triangle", "warmup_linear"]
    warmup: float  # warmup_linear: fraction of the budget spent warming up
    lr_start: float  # triangle: learning rate at t=0, as a fraction of the peak
    lr_peak_at: float  # triangle: t at which the peak is reached; linear decay to 0 after it
    batch_ramp: float  # fraction of the budget over which the batch grows to its full size

    def model_overrides(self) -> dict:
        return dict(
            norm=self.norm,
            bias=self.bias,
            ffn_kind=self.ffn_kind,
            final_norm=self.final_norm,
            pos_embedding=self.pos_embedding,
            head_transform=self.head_transform,
            decoder_bias=self.decoder_bias,
            sparse_prediction=self.sparse_prediction,
            dropout=self.dropout,
        )


CRAMMED = Recipe(
    name="crammed",
    norm="pre",  # pre-LN trains stably at a high learning rate without long warmup
    bias=False,  # biases cost time and bring nothing measurable at this budget
    ffn_kind="glu",  # gated GELU: better loss per step, no more weights than GELU of equal F
    final_norm=True,  # pre-LN leaves the residual stream unnormalised; normalise before the head
    pos_embedding="scaled_sinusoidal",  # as good as learned ones, with one parameter
    head_transform=False,  # the extra dense+LN before the decoder did not pay for its cost
    decoder_bias=False,
    sparse_prediction=True,  # run the vocabulary projection only where there is a loss
    dropout=0.0,  # single pass over the data: nothing to regularise, and it is faster
    mask_rate=0.25,  # more signal per sequence at the same compute (§4.3)
    mask_80_10_10=True,  # the released recipe keeps BERT's replacement rule
    lr=1e-3,  # peak of the one-cycle schedule the paper found best (§4.3)
    betas=(0.9, 0.98),  # shorter second-moment memory, steadier with a high learning rate
    eps=1e-12,
    weight_decay=0.01,
    clip=0.5,  # gradient clipping at 0.5 guards the high learning rate
    schedule="triangle",  # released recipe: from 25% of the peak up to it at 75% of the budget,
    warmup=0.0,  # then linear decay to zero exactly when the budget runs out
    lr_start=0.25,
    lr_peak_at=0.75,
    batch_ramp=0.6,  # small batches early (more updates), full batch from 60% of the budget
)

ORIGINAL = Recipe(
    name="original",
    norm="post",  # BERT (Devlin et al. 2019) as published
    bias=True,
    ffn_kind="gelu",
    final_norm=False,
    pos_embedding="learned",
    head_transform=True,
    decoder_bias=True,
    sparse_prediction=False,
    dropout=0.1,
    mask_rate=0.15,
    mask_80_10_10=True,
    lr=1e-4,  # BERT's Adam settings: lr 1e-4, β=(0.9, 0.999), ε=1e-6, decay 0.01
    betas=(0.9, 0.999),
    eps=1e-6,
    weight_decay=0.01,
    clip=1.0,  # BERT's released code clips the global norm at 1.0
    schedule="warmup_linear",  # warmup over 10k of 1M steps (1%), then linear decay to zero
    warmup=0.01,
    lr_start=0.0,
    lr_peak_at=0.0,
    batch_ramp=0.0,  # constant batch
)

RECIPES = {r.name: r for r in (CRAMMED, ORIGINAL)}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"recipe {name!r}: choose one of {', '.join(RECIPES)}")
    return RECIPES[name]


# --------------------------------------------------------------------------- budget
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_budget(text: str) -> float:
    """'90s', '2m', '1.5h', '24h', '1h30m' -> seconds. A bare number is an error (unit unclear)."""
    s = str(text).strip().lower().replace(" ", "")
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhd])", s)
    if not s or not parts or "".join(a + b for a, b in parts) != s:
        raise ValueError(
            f"budget {text!r}: write a duration with a unit, e.g. '90s', '2m', '1.5h', '24h' or '1h30m'"
        )
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"budget {text!r}: must be longer than zero")
    return seconds


def format_seconds(s: float) -> str:
    s = max(0, int(round(s)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else f"{m}m{sec:02d}s" if m else f"{sec}s"


# --------------------------------------------------------------------------- schedules
def lr_factor(recipe: Recipe, t: float) -> float:
    """Learning rate as a fraction of the peak at elapsed fraction t of the budget.

    triangle:      min(a + (1 − a)·t/p, (1 − t)/(1 − p))   with a = lr_start, p = lr_peak_at
    warmup_linear: t/w for t < w, then (1 − t)/(1 − w)      with w = warmup
    """
    t = min(max(t, 0.0), 1.0)
    if recipe.schedule == "triangle":
        p = recipe.lr_peak_at
        up = recipe.lr_start + (1 - recipe.lr_start) * t / p if p > 0 else 1.0
        down = (1 - t) / (1 - p) if p < 1 else 1.0
        return max(0.0, min(up, down))
    w = recipe.warmup
    if w > 0 and t < w:
        return t / w
    return max(0.0, (1 - t) / (1 - w))


def batch_size_at(recipe: Recipe, t: float, full: int, unit: int) -> int:
    """Global batch (sequences) at elapsed fraction t: grows linearly from one ``unit`` (one
    micro-batch on every process) to ``full`` over the first ``batch_ramp`` of the budget;
    always a multiple of ``unit`` so every process runs whole micro-batches."""
    if full % unit:
        raise ValueError(f"batch size {full} is not a multiple of micro-batch × processes = {unit}")
    if recipe.batch_ramp <= 0 or t >= recipe.batch_ramp:
        return full
    size = unit + (full - unit) * t / recipe.batch_ramp
    return max(unit, int(size // unit) * unit)
