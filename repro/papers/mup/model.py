"""An MLP language model whose width can be set under standard parameterisation (SP) or the
maximal update parameterisation (µP), trained with Adam.

The model predicts the next token from the previous ``context`` tokens (a Bengio-style neural
probabilistic LM): fixed-size token embeddings are concatenated, then

    h1     = W_in x + b_in        (input weights:  fan-in fixed, fan-out = width n)
    h2     = W_hid relu(h1) + b   (hidden weights: n × n)
    logits = W_out relu(h2)       (output weights: fan-in n, fan-out = vocabulary)

µP for Adam (Tensor Programs V, Table 3), written relative to a base width n0 so that at n = n0
the two parameterisations are the same model (m = n / n0 is the width multiplier):

    layer    init variance        Adam learning rate
             SP        µP         SP    µP
    input    1/fan_in  1/fan_in   η     η
    hidden   1/n       1/n        η     η / m
    output   1/n       1/(n·m)    η     η / m
    biases, embeddings, as input weights

A third variant, "sp-perlayer", keeps SP's initialisation but takes µP's per-layer learning
rates: the standard parameterisation with per-layer learning-rate exponents, which Everett et al.
(2024) find transfers as well as µP does.

The reason: Adam moves every entry by about η whatever the gradient's size, so an n × n update
that is aligned with its input changes the output by about n·η. Dividing the hidden and output
rates by m keeps that change constant in n; shrinking the output initialisation keeps the
logits from being dominated by their random start. (The tests check both tables.)
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class MLPLM(nn.Module):
    def __init__(
        self,
        vocab: int,
        context: int,
        emb_dim: int,
        width: int,
        param: str = "mup",
        base_width: int = 64,
    ):
        super().__init__()
        if param not in ("sp", "mup", "sp-perlayer"):
            raise ValueError(f"param {param!r}: use 'sp', 'mup' or 'sp-perlayer'")
        self.param, self.width, self.base_width = param, width, base_width
        self.emb = nn.Embedding(vocab, emb_dim)
        self.w_in = nn.Linear(context * emb_dim, width)
        self.w_hid = nn.Linear(width, width)
        self.w_out = nn.Linear(width, vocab, bias=False)
        m = width / base_width
        with torch.no_grad():
            nn.init.normal_(self.emb.weight, 0.0, 1.0)
            nn.init.normal_(self.w_in.weight, 0.0, 1 / math.sqrt(context * emb_dim))
            nn.init.normal_(self.w_hid.weight, 0.0, 1 / math.sqrt(width))
            out_var = 1 / (width * m) if param == "mup" else 1 / width
            nn.init.normal_(self.w_out.weight, 0.0, math.sqrt(out_var))
            nn.init.zeros_(self.w_in.bias)
            nn.init.zeros_(self.w_hid.bias)

    def forward(self, ctx_ids: torch.Tensor, record: dict | None = None) -> torch.Tensor:
        x = self.emb(ctx_ids).flatten(1)  # (B, context·emb_dim)
        h1 = self.w_in(x)  # (B, n)
        h2 = self.w_hid(F.relu(h1))  # (B, n)
        logits = self.w_out(F.relu(h2))  # (B, V)
        if record is not None:
            for name, t in (("h1", h1), ("h2", h2), ("logits", logits)):
                record[name] = t.detach().abs().mean().item()  # the typical coordinate size
        return logits

    def param_groups(self, lr: float) -> list[dict]:
        """Adam parameter groups with the per-layer learning rates of the table above."""
        m = self.width / self.base_width
        scaled = 1.0 if self.param == "sp" else 1.0 / m
        return [
            {
                "params": [self.emb.weight, self.w_in.weight, self.w_in.bias, self.w_hid.bias],
                "lr": lr,
                "lr_mult": 1.0,
            },
            {
                "params": [self.w_hid.weight, self.w_out.weight],
                "lr": lr * scaled,
                "lr_mult": scaled,
            },
        ]
