"""Associative retrieval with a trained fast-weight memory: sum rule vs delta rule.

The task follows Schlag, Irie & Schmidhuber (2021), §4.1 (setting 1, "testing capacity"):
a vocabulary of N keys; every sequence presents all N keys once, in a random order, each
paired with a value drawn uniformly from ``n_values`` symbols (fresh values every sequence,
so nothing can be memorised in the slow weights). After the N writes the memory is queried
with every key and must return that key's value; the loss is the cross-entropy of the
retrieved value, whose chance level is ln(n_values).

The slow net, trained by gradient descent, is the same for both arms: token embeddings, a
linear map of each (key, value) pair to a key k_t, a value v_t and (delta arm) a write
strength β_t = σ(w·x_t), a linear map of the queried key's embedding to a query q, and a
linear read-out to value logits. Keys and queries are L2-normalised (φ(x) = x/‖x‖), so the
fast weight matrix has d_key columns and at most d_key keys can be mutually orthogonal.
The arms differ only in the write:

    sum rule:    W_t = W_{t-1} + v_t k_tᵀ
    delta rule:  W_t = W_{t-1} + β_t (v_t − W_{t-1} k_t) k_tᵀ

and both read y = W_N q.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

RULES = ("sum", "delta")


def sum_write(k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """W_N = Σ_t v_t k_tᵀ for keys k (B, N, d_key) and values v (B, N, d_value)."""
    return v.transpose(1, 2) @ k  # (B, d_value, d_key)


def delta_write(k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """W_t = W_{t-1} + β_t (v_t − W_{t-1} k_t) k_tᵀ from W_0 = 0; beta (B, N, 1) in [0, 1]."""
    W = k.new_zeros(k.shape[0], v.shape[-1], k.shape[-1])
    for t in range(k.shape[1]):
        kt = k[:, t]  # (B, d_key)
        old = (W @ kt[:, :, None]).squeeze(-1)  # W_{t-1} k_t: what the key retrieves now
        W = W + (beta[:, t] * (v[:, t] - old))[:, :, None] * kt[:, None, :]
    return W


class FastWeightRetriever(torch.nn.Module):
    """Slow net + fast-weight memory for one number of keys ``n_keys``.

    Both rules build the same parameters in the same order, so one seed gives both arms the
    same initial slow net (the delta arm's β weights are simply unused by the sum arm).
    """

    def __init__(self, n_keys: int, n_values: int, d_model: int, d_key: int, d_value: int, rule):
        super().__init__()
        if rule not in RULES:
            raise ValueError(f"update rule {rule!r}: use one of {RULES}")
        self.rule = rule
        self.key_emb = torch.nn.Embedding(n_keys, d_model)
        self.val_emb = torch.nn.Embedding(n_values, d_model)
        self.to_k = torch.nn.Linear(d_model, d_key, bias=False)
        self.to_v = torch.nn.Linear(d_model, d_value, bias=False)
        self.to_beta = torch.nn.Linear(d_model, 1)
        self.to_q = torch.nn.Linear(d_model, d_key, bias=False)
        self.read = torch.nn.Linear(d_value, n_values)

    def forward(self, keys: torch.Tensor, values: torch.Tensor, queries: torch.Tensor):
        """keys, values: (B, N) token ids of the writes; queries: (B, M) key ids to read.
        Returns value logits (B, M, n_values)."""
        xk, xv = self.key_emb(keys), self.val_emb(values)  # (B, N, d_model) each
        x = xk + xv
        k = F.normalize(self.to_k(xk), dim=-1)  # (B, N, d_key): from the key alone
        v = self.to_v(xv)  # (B, N, d_value): from the value alone
        q = F.normalize(self.to_q(self.key_emb(queries)), dim=-1)  # (B, M, d_key)
        if self.rule == "sum":
            W = sum_write(k, v)
        else:
            W = delta_write(k, v, torch.sigmoid(self.to_beta(x)))  # β_t = σ(w·x_t + b)
        y = q @ W.transpose(1, 2)  # (B, M, d_value): y = W q for every query
        return self.read(y)


def sample_batch(n_keys: int, n_values: int, batch: int, gen: torch.Generator, repeats: int = 1):
    """Each of the N keys written ``repeats`` times, all writes in a random order, each with a
    fresh random value; queries: every key, whose target is the value of its *last* write.

    repeats=1 is the capacity setting (every key once); repeats=2 is the overwrite setting
    (every key re-written with a new value, so the memory must replace the old one)."""
    slots = torch.argsort(torch.rand(batch, n_keys * repeats, generator=gen), dim=1)
    keys = slots % n_keys  # (B, N·repeats): each key id appears ``repeats`` times
    values = torch.randint(0, n_values, keys.shape, generator=gen)
    # scatter in write order: a later write of the same key overwrites the earlier target
    target = torch.empty(batch, n_keys, dtype=torch.long)
    for t in range(keys.shape[1]):
        target.scatter_(1, keys[:, t : t + 1], values[:, t : t + 1])
    queries = torch.arange(n_keys).expand(batch, n_keys)
    return keys, values, queries, target


def retrieval_loss(model, batch) -> torch.Tensor:
    keys, values, queries, target = batch
    logits = model(keys, values, queries)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))


def train_retriever(
    rule: str,
    n_keys: int,
    seed: int,
    *,
    n_values: int,
    d_model: int,
    d_key: int,
    d_value: int,
    steps: int,
    batch: int,
    lr: float,
    eval_sequences: int,
    repeats: int = 1,
) -> dict[str, float]:
    """Train one arm on one seed; return its held-out loss and accuracy.

    The seed fixes the slow net's initialisation and the training batches (identical for the
    two rules), and the held-out sequences are drawn from a separate stream."""
    torch.manual_seed(seed)
    model = FastWeightRetriever(n_keys, n_values, d_model, d_key, d_value, rule)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (
            min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, steps))))
        ),
    )
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        loss = retrieval_loss(model, sample_batch(n_keys, n_values, batch, gen, repeats))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    eval_gen = torch.Generator().manual_seed(10_000_019 + seed)
    model.eval()
    with torch.no_grad():
        keys, values, queries, target = sample_batch(
            n_keys, n_values, eval_sequences, eval_gen, repeats
        )
        logits = model(keys, values, queries)
        loss = F.cross_entropy(logits.reshape(-1, n_values), target.reshape(-1)).item()
        acc = (logits.argmax(-1) == target).float().mean().item()
    return {"loss": loss, "accuracy": acc}
