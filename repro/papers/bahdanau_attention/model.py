"""RNN encoder–decoders with and without the soft alignment of Bahdanau et al. (2014).

RNNsearch (with attention, §3):
    encoder: bidirectional GRU, annotation h_j = [→h_j ; ←h_j]                    (§3.2)
    e_ij = v_aᵀ tanh(W_a s_{i-1} + U_a h_j)                                       (§3.1, App. A.1.2)
    α_ij = exp(e_ij) / Σ_k exp(e_ik)                                              (§3.1)
    c_i  = Σ_j α_ij h_j                                                            (§3.1)
    s_i  = GRU([E y_{i-1} ; c_i], s_{i-1}),  s_0 = tanh(W_s ←h_1)                 (§3.1, App. A.2.2)
    p(y_i | ...) = softmax(W_o tanh(U_o s_i + V_o E y_{i-1} + C_o c_i))           (§3.1, App. A.2.2)

RNNencdec (without attention, Cho et al. 2014, as the paper's baseline, §4.2):
    the same encoder, but the decoder sees one fixed vector c = [→h_T ; ←h_1] at every step
    in place of c_i. Everything else is the same, so the only difference is the alignment.

Left out: the maxout output layer (a tanh layer stands in for it) and beam search.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class Encoder(nn.Module):
    def __init__(self, vocab: int, emb: int, hidden: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, emb, padding_idx=0)
        self.rnn = nn.GRU(emb, hidden, batch_first=True, bidirectional=True)

    def forward(self, src: torch.Tensor, lengths: torch.Tensor):
        """-> annotations (B, T, 2h), the fixed summary [→h_T ; ←h_1] (B, 2h)."""
        packed = nn.utils.rnn.pack_padded_sequence(
            self.embed(src), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        out, last = self.rnn(packed)  # last: (2, B, h): forward at T, backward at 1
        ann, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        return ann, torch.cat([last[0], last[1]], dim=-1)


class AdditiveAttention(nn.Module):
    """e_ij = v_aᵀ tanh(W_a s_{i-1} + U_a h_j); the U_a h_j term is computed once per source."""

    def __init__(self, state: int, annot: int, attn: int):
        super().__init__()
        self.W_a = nn.Linear(state, attn, bias=False)
        self.U_a = nn.Linear(annot, attn)
        self.v_a = nn.Linear(attn, 1, bias=False)

    def forward(self, s_prev, ann, ann_proj, pad):
        e = self.v_a(torch.tanh(self.W_a(s_prev)[:, None] + ann_proj)).squeeze(-1)  # (B, T)
        alpha = e.masked_fill(pad, float("-inf")).softmax(-1)
        return (alpha[:, :, None] * ann).sum(1), alpha  # c_i (B, 2h), α_i (B, T)


class Seq2Seq(nn.Module):
    """attention=True: RNNsearch; attention=False: RNNencdec."""

    def __init__(self, vocab: int, emb: int, hidden: int, attention: bool, attn_dim: int = 0):
        super().__init__()
        self.attention = attention
        self.encoder = Encoder(vocab, emb, hidden)
        self.embed = nn.Embedding(vocab, emb, padding_idx=0)
        self.init = nn.Linear(hidden, hidden)  # s_0 = tanh(W_s ←h_1)
        if attention:
            # c_i depends on s_{i-1}: the decoder has to step one target position at a time
            self.cell = nn.GRUCell(emb + 2 * hidden, hidden)
            self.attn = AdditiveAttention(hidden, 2 * hidden, attn_dim or hidden)
        else:
            # the context is the same at every step, so the whole teacher-forced target runs
            # through one multi-step GRU call (same cell, same parameter count, about 2x faster
            # on a CPU than a Python loop over GRUCell)
            self.rnn = nn.GRU(emb + 2 * hidden, hidden, batch_first=True)
        # t_i = tanh(U_o s_i + V_o E y_{i-1} + C_o c_i), as one linear map of the concatenation
        self.readout = nn.Linear(hidden + emb + 2 * hidden, hidden)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, src, lengths, tgt_in, return_alignment: bool = False):
        """Teacher-forced logits (B, Ty, V) for inputs tgt_in (BOS y_1 ... y_{Ty-1})."""
        ann, summary = self.encoder(src, lengths)
        hidden = self.init.in_features
        s = torch.tanh(self.init(summary[:, hidden:]))  # ←h_1 is the second half
        pad = torch.arange(src.shape[1], device=src.device)[None] >= lengths[:, None]
        ann_proj = self.attn.U_a(ann) if self.attention else None
        emb = self.embed(tgt_in)  # (B, Ty, e)
        if not self.attention:
            # the fixed-length vector the paper argues is a bottleneck, fed at every step
            c = summary[:, None].expand(-1, emb.shape[1], -1)
            states, _ = self.rnn(torch.cat([emb, c], dim=-1), s[None].contiguous())
            logits = self.out(torch.tanh(self.readout(torch.cat([states, emb, c], dim=-1))))
            return (logits, None) if return_alignment else logits
        outs, alphas = [], []
        for i in range(tgt_in.shape[1]):
            c, alpha = self.attn(s, ann, ann_proj, pad)
            alphas.append(alpha)
            s = self.cell(torch.cat([emb[:, i], c], dim=-1), s)
            outs.append(torch.tanh(self.readout(torch.cat([s, emb[:, i], c], dim=-1))))
        logits = self.out(torch.stack(outs, dim=1))
        if return_alignment:
            return logits, torch.stack(alphas, dim=1)  # (B, Ty, Tx)
        return logits

    @torch.no_grad()
    def greedy(self, src, lengths, bos: int, steps: int):
        """Greedy decoding for ``steps`` tokens (the target length is known for these tasks)."""
        ann, summary = self.encoder(src, lengths)
        hidden = self.init.in_features
        s = torch.tanh(self.init(summary[:, hidden:]))
        pad = torch.arange(src.shape[1], device=src.device)[None] >= lengths[:, None]
        ann_proj = self.attn.U_a(ann) if self.attention else None
        y = torch.full((src.shape[0],), bos, dtype=torch.long, device=src.device)
        out = []
        for _ in range(steps):
            c = self.attn(s, ann, ann_proj, pad)[0] if self.attention else summary
            e = self.embed(y)
            x = torch.cat([e, c], dim=-1)
            s = self.cell(x, s) if self.attention else self.rnn(x[:, None], s[None])[1][0]
            y = self.out(torch.tanh(self.readout(torch.cat([s, e, c], dim=-1)))).argmax(-1)
            out.append(y)
        return torch.stack(out, dim=1)


def loss_fn(model: Seq2Seq, src, lengths, tgt) -> torch.Tensor:
    logits = model(src, lengths, tgt[:, :-1])
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), tgt[:, 1:].reshape(-1), ignore_index=0
    )
