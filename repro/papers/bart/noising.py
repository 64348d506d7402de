"""The noising functions of BART §2.2, one window of token ids at a time.

Every function takes a 1-D ``LongTensor`` of original token ids and a ``torch.Generator`` and
returns a :class:`Noised`: the corrupted source for the encoder and, aligned with the
original, which tokens were hidden (masked or removed). The decoder's target is always the
original window, so the hidden mask is what tells us where the model had to infer content.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

import torch


@dataclass
class Noised:
    source: torch.Tensor  # (S,) corrupted ids fed to the encoder; S may differ from n
    hidden: torch.Tensor  # (n,) bool: True where the original token is not visible in source
    spans: list[tuple[int, int]]  # text infilling only: (start in original, length) per mask


def _count(ratio: float, n: int, gen: torch.Generator) -> int:
    """ratio·n rounded up or down at random, so that the mean count is exactly ratio·n."""
    x = ratio * n
    base = math.floor(x)
    return base + int(torch.rand((), generator=gen).item() < x - base)


def text_infilling(
    tokens: torch.Tensor, mask_id: int, ratio: float, lam: float, gen: torch.Generator
) -> Noised:
    """Replace spans with one ``[MASK]`` each; span lengths L ~ Poisson(λ).

    P(L = ℓ) = λ^ℓ e^{−λ} / ℓ!,  E[L] = λ.

    The paper masks 30% of the tokens of each document with spans from Poisson(3); a
    0-length span inserts a ``[MASK]`` without removing anything. We draw the number of
    spans k so that E[k]·λ = ratio·n (k = ratio·n/λ, rounded at random) and keep every
    length exactly as drawn: the hidden fraction is then ratio in expectation and the
    lengths are untruncated Poisson(λ) draws. (Truncating the last span to hit the budget
    exactly, the other option, shortens the spans on average.) The k span blocks and the
    n − ΣL kept tokens are put in a uniformly random order, so spans may touch: two touching
    spans give two masks in a row, and the model still sees one mask per span.
    """
    n = len(tokens)
    k = _count(ratio / lam, n, gen)
    lengths = torch.poisson(torch.full((k,), float(lam)), generator=gen).long()
    # ΣL > n needs a deviation of many standard deviations at n ≥ 32; drop spans if it happens
    while int(lengths.sum()) > n:
        lengths = lengths[:-1]
        k -= 1
    kept = n - int(lengths.sum())
    is_span = torch.zeros(kept + k, dtype=torch.bool)
    is_span[torch.randperm(kept + k, generator=gen)[:k]] = True
    # each slot eats 1 original token (kept) or L (span); its first token is at `starts`
    eats = torch.ones(kept + k, dtype=torch.long)
    eats[is_span] = lengths
    starts = eats.cumsum(0) - eats
    source = torch.where(is_span, mask_id, tokens[starts.clamp(max=n - 1)])
    hidden = torch.repeat_interleave(is_span, eats)  # (n,): tokens eaten by a span
    spans = list(zip(starts[is_span].tolist(), lengths.tolist()))
    return Noised(source, hidden, spans)


def token_masking(tokens: torch.Tensor, mask_id: int, ratio: float, gen: torch.Generator) -> Noised:
    """BERT-style: a random ratio of the tokens is replaced by ``[MASK]`` (§2.2; no 80/10/10
    split, the paper replaces every sampled token). Length is unchanged."""
    n = len(tokens)
    hidden = torch.zeros(n, dtype=torch.bool)
    hidden[torch.randperm(n, generator=gen)[: _count(ratio, n, gen)]] = True
    return Noised(torch.where(hidden, mask_id, tokens), hidden, [])


def token_deletion(tokens: torch.Tensor, ratio: float, gen: torch.Generator) -> Noised:
    """A random ratio of the tokens is deleted; the model must find which positions are
    missing as well as what they held."""
    n = len(tokens)
    hidden = torch.zeros(n, dtype=torch.bool)
    hidden[torch.randperm(n, generator=gen)[: _count(ratio, n, gen)]] = True
    return Noised(tokens[~hidden], hidden, [])


def sentence_permutation(
    tokens: torch.Tensor, sentence_ends: Collection[int], gen: torch.Generator
) -> Noised:
    """Split after every sentence-final token (full stop, '?', '!') and shuffle the pieces.
    Nothing is hidden: every token is in the source, in another order."""
    pieces, start = [], 0
    for i, t in enumerate(tokens.tolist()):
        if t in sentence_ends:
            pieces.append(tokens[start : i + 1])
            start = i + 1
    if start < len(tokens):
        pieces.append(tokens[start:])
    order = torch.randperm(len(pieces), generator=gen).tolist()
    source = torch.cat([pieces[i] for i in order]) if pieces else tokens.clone()
    return Noised(source, torch.zeros(len(tokens), dtype=torch.bool), [])


def document_rotation(tokens: torch.Tensor, gen: torch.Generator) -> Noised:
    """Rotate so that the window starts at a uniformly chosen token."""
    start = int(torch.randint(len(tokens), (), generator=gen))
    return Noised(
        torch.cat([tokens[start:], tokens[:start]]),
        torch.zeros(len(tokens), dtype=torch.bool),
        [],
    )


def rebuild_infilled(tokens: torch.Tensor, spans: list[tuple[int, int]], mask_id: int) -> list:
    """The source text infilling must produce from the original and its spans, written
    independently of :func:`text_infilling`: each span, however long (0 included), becomes
    exactly one mask at its place. Spans are in original order; 0-length ones insert."""
    out, pos = [], 0
    for start, ell in spans:
        out.extend(tokens[pos:start].tolist())
        out.append(mask_id)
        pos = start + ell
    out.extend(tokens[pos:].tolist())
    return out


def noise(
    kind: str,
    tokens: torch.Tensor,
    *,
    mask_id: int,
    ratio: float,
    lam: float,
    sentence_ends: Collection[int],
    gen: torch.Generator,
) -> Noised:
    if kind == "infilling":
        return text_infilling(tokens, mask_id, ratio, lam, gen)
    if kind == "masking":
        return token_masking(tokens, mask_id, ratio, gen)
    if kind == "deletion":
        return token_deletion(tokens, ratio, gen)
    if kind == "permutation":
        return sentence_permutation(tokens, sentence_ends, gen)
    if kind == "rotation":
        return document_rotation(tokens, gen)
    raise ValueError(f"noising {kind!r}: use infilling, masking, deletion, permutation or rotation")


def infilling_statistics(
    n_windows: int, n: int, ratio: float, lam: float, gen: torch.Generator, mask_id: int = -1
) -> dict:
    """Claim 1, measured on the output: hidden fraction, span lengths (removed tokens per
    mask), their histogram, and whether every source equals the one-mask-per-span rebuild.

    The tokens are distinct ids 0..n−1 so that a rebuild mismatch cannot hide behind repeats.
    """
    tokens = torch.arange(n)
    hidden = masks = 0
    counts: dict[int, int] = {}
    one_mask_per_span = True
    for _ in range(n_windows):
        z = text_infilling(tokens, mask_id, ratio, lam, gen)
        n_mask = int((z.source == mask_id).sum())
        hidden += int(z.hidden.sum())
        masks += n_mask
        # the removed tokens counted from the source alone: n − (visible tokens)
        visible = len(z.source) - n_mask
        one_mask_per_span &= (
            n_mask == len(z.spans)
            and z.source.tolist() == rebuild_infilled(tokens, z.spans, mask_id)
            and n - visible == int(z.hidden.sum())
        )
        for _, ell in z.spans:
            counts[ell] = counts.get(ell, 0) + 1
    total = sum(counts.values())
    pmf = {ell: math.exp(-lam) * lam**ell / math.factorial(ell) for ell in range(max(counts) + 1)}
    # total variation distance between the empirical span-length law and Poisson(λ)
    tv = 0.5 * sum(abs(counts.get(ell, 0) / total - p) for ell, p in pmf.items())
    tv += 0.5 * (1 - sum(pmf.values()))  # Poisson mass beyond the largest length seen
    return {
        "mask_fraction": hidden / (n_windows * n),
        "mean_span_length": hidden / masks,
        "span_length_tv": tv,
        "span_length_counts": {str(k): counts[k] for k in sorted(counts)},
        "zero_length_share": counts.get(0, 0) / total,
        "one_mask_per_span": bool(one_mask_per_span),
        "spans_counted": total,
    }
