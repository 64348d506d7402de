"""A LoRA layer written by us: a frozen ``nn.Linear`` plus a trainable low-rank update.

    h = W₀x + ΔWx = W₀x + (α/r) · B A x          (eq. 3 and §4.1)

A (r × k) starts Gaussian and B (d × r) at zero, so ΔW = 0 and training starts from the
pretrained model. α is fixed while r varies (the paper sets α to the first r it tries and does
not tune it), so α/r keeps the size of the update comparable across ranks.

The Transformer we adapt projects queries, keys and values with one fused ``qkv`` matrix.
``parts``/``adapt`` cut its output into equal blocks and give each adapted block its own
(A, B), so that ``parts=3, adapt=(0, 2)`` adapts W_q and W_v only, as the paper does.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class LoRALinear(nn.Module):
    def __init__(
        self,
        base: nn.Linear,
        r: int,
        alpha: float,
        parts: int = 1,
        adapt: tuple[int, ...] = (0,),
    ):
        super().__init__()
        if base.out_features % parts:
            raise ValueError(f"out_features {base.out_features} does not split into {parts}")
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.r, self.alpha, self.parts, self.adapt = r, alpha, parts, tuple(adapt)
        self.scale = alpha / r
        d_out, d_in = base.out_features // parts, base.in_features
        # A ~ N(0, 1/k): the update's input side keeps unit scale; B = 0 makes ΔW = 0 at start
        self.A = nn.ParameterList(
            nn.Parameter(torch.randn(r, d_in) / math.sqrt(d_in)) for _ in self.adapt
        )
        self.B = nn.ParameterList(nn.Parameter(torch.zeros(d_out, r)) for _ in self.adapt)

    def delta_weight(self) -> torch.Tensor:
        """ΔW = (α/r)·BA in the adapted blocks of the output, zero elsewhere: (d_out_total, k)."""
        d_out = self.base.out_features // self.parts
        blocks = [
            self.base.weight.new_zeros(d_out, self.base.in_features) for _ in range(self.parts)
        ]
        for j, part in enumerate(self.adapt):
            blocks[part] = self.scale * self.B[j] @ self.A[j]
        return torch.cat(blocks, dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        chunks = list(y.split(self.base.out_features // self.parts, dim=-1))
        for j, part in enumerate(self.adapt):
            # x → A x (r numbers per token) → B (A x): the update never forms ΔW
            chunks[part] = chunks[part] + self.scale * F.linear(F.linear(x, self.A[j]), self.B[j])
        return torch.cat(chunks, dim=-1) if self.parts > 1 else chunks[0]

    @torch.no_grad()
    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` with W = W₀ + ΔW (§4.1: no extra latency at inference)."""
        lin = nn.Linear(
            self.base.in_features, self.base.out_features, bias=self.base.bias is not None
        )
        lin = lin.to(self.base.weight.device, self.base.weight.dtype)
        lin.weight.copy_(self.base.weight + self.delta_weight())
        if self.base.bias is not None:
            lin.bias.copy_(self.base.bias)
        return lin


# W_q and W_v, the paper's main choice (§4.2, Table 5): blocks 0 and 2 of the fused qkv matrix
QV = {"qkv": (3, (0, 2))}
# every weight matrix of every block (attention and MLP), for comparison
ALL_LINEAR = {"qkv": (3, (0, 1, 2)), "proj": (1, (0,)), "w_in": (1, (0,)), "w_out": (1, (0,))}


def add_lora(
    model: nn.Module,
    r: int,
    alpha: float,
    targets: dict[str, tuple[int, tuple[int, ...]]] | None = None,
) -> nn.Module:
    """Freeze ``model`` and wrap every ``nn.Linear`` whose attribute name is in ``targets``
    (name → (parts, adapted blocks)) in a LoRALinear, in place. Default: W_q and W_v."""
    targets = QV if targets is None else targets
    for p in model.parameters():
        p.requires_grad_(False)
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if name in targets and isinstance(child, nn.Linear):
                parts, adapt = targets[name]
                setattr(module, name, LoRALinear(child, r, alpha, parts, adapt))
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every LoRALinear by its merged ``nn.Linear`` (in place): the result has exactly
    the architecture of the model before ``add_lora``."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, LoRALinear):
                setattr(module, name, child.merged())
    return model


def trainable_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
