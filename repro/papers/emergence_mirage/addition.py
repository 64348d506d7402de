"""Multi-digit addition as a character-level task, and the metrics scored on model outputs.

A problem is written ``a+b=c`` with a and b zero-padded to ``n_digits`` and c to
``n_digits + 1``: ``047+385=0432``. The answer has L = n_digits + 1 tokens. With
``reverse=True`` the answer is written least significant digit first (``047+385=2340``), so
that each digit depends only on digits already seen and on the carry; small models learn this
order far faster (a pilot with the usual order left the two last digits at chance for widths up
to 24 after 800 steps), and the mirage argument does not depend on the order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PLUS, EQUALS = 10, 11
VOCAB = 12  # digits 0-9, '+', '='


def is_test_pair(a: torch.Tensor, b: torch.Tensor, n_digits: int) -> torch.Tensor:
    """A fixed tenth of all (a, b) pairs is held out: the test set never appears in training."""
    return (a * 10**n_digits + b) % 10 == 7


def encode(a: torch.Tensor, b: torch.Tensor, n_digits: int, reverse: bool = True) -> torch.Tensor:
    """(N,) operands -> (N, 2·n + 2 + n + 1) token ids ``a+b=c``."""

    def digits(x: torch.Tensor, n: int) -> torch.Tensor:
        powers = 10 ** torch.arange(n - 1, -1, -1)
        return (x[:, None] // powers) % 10  # (N, n), most significant first

    n = len(a)
    return torch.cat(
        [
            digits(a, n_digits),
            torch.full((n, 1), PLUS),
            digits(b, n_digits),
            torch.full((n, 1), EQUALS),
            digits(a + b, n_digits + 1).flip(1) if reverse else digits(a + b, n_digits + 1),
        ],
        dim=1,
    )


def sample(
    n: int, n_digits: int, gen: torch.Generator, test: bool, reverse: bool = True
) -> torch.Tensor:
    """n problems from the training or the test side of the split."""
    out = []
    while sum(len(x) for x in out) < n:
        a = torch.randint(0, 10**n_digits, (2 * n,), generator=gen)
        b = torch.randint(0, 10**n_digits, (2 * n,), generator=gen)
        keep = is_test_pair(a, b, n_digits) == test
        out.append(encode(a[keep], b[keep], n_digits, reverse))
    return torch.cat(out)[:n]


def answer_len(n_digits: int) -> int:
    return n_digits + 1


def answer_loss(model, seqs: torch.Tensor, n_digits: int) -> torch.Tensor:
    """Cross-entropy on the answer tokens only (the prompt is given, not predicted)."""
    L = answer_len(n_digits)
    logits = model(seqs[:, :-1])  # (N, T-1, V)
    return F.cross_entropy(logits[:, -L:].reshape(-1, VOCAB), seqs[:, -L:].reshape(-1))


@torch.no_grad()
def greedy_answers(model, seqs: torch.Tensor, n_digits: int) -> torch.Tensor:
    """Decode the L answer tokens greedily from the prompt ``a+b=``; (N, L)."""
    L = answer_len(n_digits)
    x = seqs[:, :-L]
    for _ in range(L):
        nxt = model(x)[:, -1, :10].argmax(-1, keepdim=True)  # answers are digits
        x = torch.cat([x, nxt], dim=1)
    return x[:, -L:]


def edit_distance(a: list[int], b: list[int]) -> int:
    """Levenshtein distance between token sequences (insertions, deletions, substitutions)."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


@torch.no_grad()
def score(model, seqs: torch.Tensor, n_digits: int) -> dict:
    """All metrics on the same greedy outputs (plus the teacher-forced likelihood).

    per_token_acc   mean over answer positions of (output token == target token)
    exact_match     all L answer tokens right: the metric under which abilities "emerge"
    edit_distance   token Levenshtein distance of output to target (0 … L)
    log_lik         mean log p(target token | correct prefix), teacher-forced
    position_acc    per-token accuracy at each answer position (most significant first)
    """
    model.eval()
    L = answer_len(n_digits)
    target = seqs[:, -L:]
    out = greedy_answers(model, seqs, n_digits)
    right = out == target  # (N, L)
    logp = model(seqs[:, :-1])[:, -L:].log_softmax(-1)  # (N, L, V)
    ll = logp.gather(-1, target[..., None]).mean().item()
    dist = [edit_distance(o, t) for o, t in zip(out.tolist(), target.tolist())]
    model.train()
    return {
        "per_token_acc": right.float().mean().item(),
        "exact_match": right.all(1).float().mean().item(),
        "edit_distance": sum(dist) / len(dist),
        "log_lik": ll,
        "position_acc": right.float().mean(0).tolist(),
    }


def sharpness(values: list[float]) -> float:
    """Largest change between neighbouring model sizes as a share of the metric's whole range
    over the family: 1/(K−1) for a steady climb over K sizes, 1 for a single jump."""
    span = max(values) - min(values)
    if span == 0:
        return 0.0
    return max(abs(b - a) for a, b in zip(values, values[1:])) / span
