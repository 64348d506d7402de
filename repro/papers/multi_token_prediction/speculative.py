"""Self-speculative greedy decoding with the extra heads (Gloeckle et al. 2024, §3.2, after
Stern et al. 2018's blockwise parallel decoding).

One forward pass of the trunk gives, at the last position, a draft of the next k tokens: head
1's greedy token and heads 2…k's guesses further ahead. The next pass runs the model on the
sequence with all k drafts appended; the next-token head's greedy choice at each drafted
position verifies the following draft, and the longest agreeing prefix is kept (at least the
first token, which is head 1's own greedy choice). The same pass gives, at the last kept
position, the heads' drafts for the next block. The output is exactly the greedy output of the
next-token model; the saving is in forward passes: accepted tokens per pass ∈ [1, k].
"""

from __future__ import annotations

import torch

from .model import MultiTokenLM


def _argmax(logits: torch.Tensor) -> int:
    return int(logits.argmax(-1))


@torch.no_grad()
def greedy(model: MultiTokenLM, prompt: list[int], n_new: int) -> list[int]:
    """Plain greedy decoding with the next-token head: one forward pass per token."""
    seq = list(prompt)
    for _ in range(n_new):
        seq.append(_argmax(model(torch.tensor(seq)[None])[0, -1]))
    return seq[len(prompt) :]


@torch.no_grad()
def speculative(model: MultiTokenLM, prompt: list[int], n_new: int, k: int) -> tuple[list, int]:
    """Greedy decoding drafted by the first ``k`` heads and verified by head 1.

    Returns (the generated tokens, forward passes used). The caller keeps
    ``len(prompt) + n_new`` within the model's positions, so no window is ever cropped and the
    output equals :func:`greedy`'s."""
    if not 1 <= k <= model.n_future:
        raise ValueError(f"k = {k}: the model has {model.n_future} heads")
    if len(prompt) + n_new > model.cfg.seq_len:
        raise ValueError(
            f"prompt {len(prompt)} + {n_new} new tokens exceed the {model.cfg.seq_len} positions"
        )
    seq = list(prompt)
    h = model.trunk_out(torch.tensor(seq)[None])
    drafts = [_argmax(model.head_logits(h, i)[0, -1]) for i in range(k)]
    passes = 1
    end = len(prompt) + n_new
    while True:
        seq.append(drafts[0])  # head 1's greedy token: right by construction
        if len(seq) == end:
            break
        guesses = drafts[1 : 1 + end - len(seq)]  # heads 2…k, to be verified
        h = model.trunk_out(torch.tensor(seq + guesses)[None])
        passes += 1
        if guesses:
            verified = model.head_logits(h, 0)[0].argmax(-1)  # greedy next token everywhere
            kept = 0  # guesses[j] sits at len(seq)+j, checked by the prediction one before it
            while kept < len(guesses) and int(verified[len(seq) - 1 + kept]) == guesses[kept]:
                kept += 1
            seq += guesses[:kept]
            if len(seq) == end:
                break
        last = len(seq) - 1  # the same pass drafts the next block from the last kept position
        drafts = [_argmax(model.head_logits(h, i)[0, last]) for i in range(k)]
    return seq[len(prompt) :], passes


def tokens_per_pass(
    model: MultiTokenLM, prompts: list[list[int]], n_new: int, k: int
) -> tuple[float, float]:
    """(generated tokens per forward pass over all prompts, share of prompts whose
    speculative output equals plain greedy decoding)."""
    model.eval()
    tokens = passes = same = 0
    for p in prompts:
        out, used = speculative(model, p, n_new, k)
        tokens += len(out)
        passes += used
        same += out == greedy(model, p, n_new)
    return tokens / passes, same / len(prompts)
