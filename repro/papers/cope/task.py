"""The Flip-Flop language (Liu et al. 2023, "Exposing Attention Glitches with Flip-Flop
Language Modeling"), one of CoPE's synthetic tasks (§4).

A sequence is a list of instructions, each an operation followed by a bit:
  ``w b``  write bit b;   ``i b``  ignore (b is noise);   ``r b``  read: b must equal the
  last written bit.
The first instruction is a write. The model is scored only where the answer is determined:
predicting the bit after each ``r``. Training uses p(ignore) = 0.8 with writes and reads
equally likely; the out-of-distribution tests change only p(ignore): 0.98 ("sparse": long
stretches of noise between a write and its read) and 0.1 ("dense").
"""

from __future__ import annotations

import torch

W, I, R, ZERO, ONE = range(5)
VOCAB = ("w", "i", "r", "0", "1")


def flip_flop(n_seq: int, n_instr: int, p_ignore: float, gen: torch.Generator):
    """(tokens, read_mask): tokens (n_seq, 2·n_instr); read_mask marks the positions whose
    *next* token is a read's answer (the ``r`` tokens), so logits there are scored."""
    p_rw = (1.0 - p_ignore) / 2
    probs = torch.tensor([p_rw, p_ignore, p_rw])
    ops = torch.multinomial(probs.expand(n_seq, 3), n_instr, replacement=True, generator=gen)
    ops[:, 0] = W
    bits = torch.randint(0, 2, (n_seq, n_instr), generator=gen)
    # A read returns the last write: carry the written bit forward through the sequence.
    last = bits[:, 0].clone()
    for t in range(1, n_instr):
        is_w, is_r = ops[:, t] == W, ops[:, t] == R
        last = torch.where(is_w, bits[:, t], last)
        bits[:, t] = torch.where(is_r, last, bits[:, t])
    tokens = torch.stack((ops, bits + ZERO), dim=-1).reshape(n_seq, 2 * n_instr)
    read_mask = torch.zeros_like(tokens, dtype=torch.bool)
    read_mask[:, 0::2] = ops == R
    return tokens, read_mask
