"""Accuracy against length for RNNsearch and RNNencdec. Claims: see __init__.py."""

from __future__ import annotations

import torch

from repro.common import param_count
from repro.common.stats import seeds_for, unigram_entropy
from repro.context import RunContext

from .model import Seq2Seq, loss_fn

PAD, BOS, FIRST_SYMBOL = 0, 1, 2


def make_batch(
    task: str, n: int, length: int | tuple[int, int], n_symbols: int, gen: torch.Generator
):
    """n sources of one length (int) or of lengths uniform in [lo, hi] (tuple).

    Returns src (n, T) padded, lengths (n,), tgt (n, T + 1) = BOS then the transformed source.
    """
    if isinstance(length, int):
        lengths = torch.full((n,), length)
    else:
        lengths = torch.randint(length[0], length[1] + 1, (n,), generator=gen)
    T = int(lengths.max())
    pos = torch.arange(T)[None]
    valid = pos < lengths[:, None]
    sym = torch.randint(FIRST_SYMBOL, FIRST_SYMBOL + n_symbols, (n, T), generator=gen)
    src = torch.where(valid, sym, PAD)
    if task == "reverse":
        out = torch.where(valid, src.gather(1, (lengths[:, None] - 1 - pos).clamp(min=0)), PAD)
    elif task == "copy":
        out = src.clone()
    else:
        raise ValueError(f"task {task!r}: use reverse or copy")
    return src, lengths, torch.cat([torch.full((n, 1), BOS), out], dim=1)


def matched_hidden(cfg, vocab: int, target: int) -> int:
    """The baseline GRU width whose parameter count is closest to ``target``."""

    def count(h: int) -> int:
        return param_count(Seq2Seq(vocab, cfg.emb, h, attention=False))

    return min(range(cfg.hidden, 2 * cfg.hidden), key=lambda h: abs(count(h) - target))


def bucket_edges(cfg) -> list[tuple[int, int]]:
    width = (cfg.max_len - cfg.min_len + 1) / cfg.buckets
    edges = [round(cfg.min_len + i * width) for i in range(cfg.buckets + 1)]
    return [(edges[i], edges[i + 1] - 1) for i in range(cfg.buckets)]


def train(model: Seq2Seq, cfg, task: str, ctx: RunContext, seed: int, desc: str) -> list[float]:
    # Same seed for both models: the same batches in the same order (paired arms).
    gen = torch.Generator().manual_seed(seed + 1)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    losses = []
    for _ in ctx.progress(range(cfg.steps), desc=desc):
        src, lengths, tgt = make_batch(
            task, cfg.batch, (cfg.min_len, cfg.max_len), cfg.n_symbols, gen
        )
        loss = loss_fn(model, src, lengths, tgt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        losses.append(loss.item())
    return losses


def accuracy_by_bucket(model: Seq2Seq, cfg, task: str, seed: int) -> list[float]:
    """Per-token accuracy of greedy decoding on fresh sequences, one value per length bucket.

    The evaluation generator is seeded apart from training's; with ≥ 16^5 sources per length
    a repeat of a training sequence is vanishingly rare.
    """
    gen = torch.Generator().manual_seed(10_000 + seed)
    model.eval()
    accs = []
    for lo, hi in bucket_edges(cfg):
        src, lengths, tgt = make_batch(task, cfg.eval_per_bucket, (lo, hi), cfg.n_symbols, gen)
        ref = tgt[:, 1:]
        pred = model.greedy(src, lengths, BOS, ref.shape[1])
        valid = ref != PAD
        accs.append((((pred == ref) & valid).sum() / valid.sum()).item())
    model.train()
    return accs


def heldout_batch(cfg, task: str, seed: int):
    """Fresh sequences over the whole length range, for the held-out loss."""
    gen = torch.Generator().manual_seed(20_000 + seed)
    return make_batch(task, cfg.eval_per_bucket, (cfg.min_len, cfg.max_len), cfg.n_symbols, gen)


@torch.no_grad()
def heldout_loss(model: Seq2Seq, batch) -> float:
    """Teacher-forced cross-entropy (nats per target symbol) on a held-out batch."""
    model.eval()
    loss = loss_fn(model, *batch).item()
    model.train()
    return loss


def target_unigram(cfg, task: str, seed: int, batch) -> float:
    """Unigram cross-entropy of the target symbols (training draw -> held-out batch): the floor a
    decoder must beat to have learned more than symbol frequencies (≈ ln n_symbols)."""
    gen = torch.Generator().manual_seed(seed + 1)
    _, _, tgt = make_batch(task, cfg.batch * 8, (cfg.min_len, cfg.max_len), cfg.n_symbols, gen)
    train_ids = tgt[:, 1:][tgt[:, 1:] != PAD]
    eval_tgt = batch[2][:, 1:]
    return unigram_entropy(train_ids, FIRST_SYMBOL + cfg.n_symbols, eval_tgt[eval_tgt != PAD])


def plot(cfg, task: str, edges, acc_att, acc_base, alignment, src, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mids = [(lo + hi) / 2 for lo, hi in edges]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10.5, 4.2))
    a.plot(mids, acc_att, "o-", label="RNNsearch (attention)")
    a.plot(mids, acc_base, "s-", label="RNNencdec (fixed vector)")
    a.set_xlabel("source length (bucket centre)")
    a.set_ylabel("token accuracy, held-out")
    a.set_ylim(0, 1.02)
    a.set_title(f"{task}, {cfg.steps} steps, equal parameters, mean of {cfg.seeds} seeds")
    a.legend()
    im = b.imshow(alignment, cmap="gray_r", vmin=0, vmax=1, aspect="auto")
    b.set_xlabel("source position j")
    b.set_ylabel("output position i")
    b.set_title(f"alignment α_ij, one {task} example of length {len(src)}")
    fig.colorbar(im, ax=b, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_seed(cfg, ctx: RunContext, task: str, seed: int) -> dict:
    """Train both models on one task and seed (same batches, same evaluation draws)."""
    vocab = FIRST_SYMBOL + cfg.n_symbols
    torch.manual_seed(seed)
    search = Seq2Seq(vocab, cfg.emb, cfg.hidden, attention=True)
    base_hidden = matched_hidden(cfg, vocab, param_count(search))
    torch.manual_seed(seed)
    encdec = Seq2Seq(vocab, cfg.emb, base_hidden, attention=False)
    held = heldout_batch(cfg, task, seed)
    unigram = target_unigram(cfg, task, seed, held)
    out: dict = {"models": {"attention": search, "no_attention": encdec}, "unigram": unigram}
    for name, model in out["models"].items():
        losses = train(model, cfg, task, ctx, seed, desc=f"{task}, seed {seed}: train {name}")
        out[f"accuracy_{name}"] = accuracy_by_bucket(model, cfg, task, seed)
        out[f"final_loss_{name}"] = sum(losses[-20:]) / len(losses[-20:])
        out[f"heldout_loss_{name}"] = heldout_loss(model, held)
    return out


def mean(xs) -> float:
    return sum(xs) / len(xs)


def record(m: dict, task: str, per_seed: dict[str, list]) -> None:
    """Write one task's per-seed measurements under ``<task>_...`` keys (and the bucket means)."""
    m[f"{task}_seeds"] = len(per_seed["unigram"])
    m[f"{task}_target_unigram_nats"] = per_seed["unigram"]
    for name in ("attention", "no_attention"):
        curves = per_seed[f"accuracy_{name}"]
        m[f"{task}_accuracy_{name}_per_seed"] = curves
        m[f"{task}_final_loss_{name}"] = per_seed[f"final_loss_{name}"]
        m[f"{task}_heldout_loss_{name}"] = per_seed[f"heldout_loss_{name}"]
        # learned gate: the per-seed unigram floor minus the held-out loss, nats
        m[f"{task}_{name}_below_unigram"] = [
            u - x for u, x in zip(per_seed["unigram"], per_seed[f"heldout_loss_{name}"])
        ]
        # sanity gate for the fixed-vector baseline: its accuracy on the shortest sources
        m[f"{task}_{name}_shortest"] = [c[0] for c in curves]
        m[f"{task}_accuracy_{name}"] = [mean(col) for col in zip(*curves)]  # mean over seeds
        m.setdefault("bucket_accuracy", {}).setdefault(task, {})[name] = {
            "shortest": m[f"{task}_accuracy_{name}"][0],
            "longest": m[f"{task}_accuracy_{name}"][-1],
        }
    for k in ("attention_drop", "no_attention_drop", "attention_drop_ratio", "long_bucket_gap"):
        m[f"{task}_{k}"] = per_seed[k]


def main(cfg, ctx: RunContext) -> None:
    vocab = FIRST_SYMBOL + cfg.n_symbols
    n_search = param_count(Seq2Seq(vocab, cfg.emb, cfg.hidden, attention=True))
    base_hidden = matched_hidden(cfg, vocab, n_search)
    n_encdec = param_count(Seq2Seq(vocab, cfg.emb, base_hidden, attention=False))
    ctx.metrics.update(
        params_attention=n_search,
        params_no_attention=n_encdec,
        param_ratio=n_encdec / n_search,
        hidden_no_attention=base_hidden,
    )
    edges = bucket_edges(cfg)
    ctx.metrics["buckets"] = [list(e) for e in edges]

    m = ctx.metrics
    last = {}
    for task in cfg.tasks:
        per_seed: dict[str, list] = {}
        for seed in seeds_for(ctx.seed, cfg.seeds):
            r = run_seed(cfg, ctx, task, seed)
            for k, v in r.items():
                if k != "models":
                    per_seed.setdefault(k, []).append(v)
            acc_att, acc_base = r["accuracy_attention"], r["accuracy_no_attention"]
            drop_att, drop_base = acc_att[0] - acc_att[-1], acc_base[0] - acc_base[-1]
            for k, v in (
                ("attention_drop", drop_att),
                ("no_attention_drop", drop_base),
                # a baseline that does not fall leaves nothing to compare against: undefined
                ("attention_drop_ratio", drop_att / drop_base if drop_base > 0 else None),
                # paired by seed: same batches, same evaluation sequences for both models
                ("long_bucket_gap", acc_att[-1] - acc_base[-1]),
            ):
                per_seed.setdefault(k, []).append(v)
            # Written after every seed, so an interrupted run keeps the seeds it finished.
            record(m, task, per_seed)
            last[task] = r

    for task, r in last.items():
        search = r["models"]["attention"]
        gen = torch.Generator().manual_seed(ctx.seed + 7)
        length = edges[-1][0]
        src, lengths, tgt = make_batch(task, 1, length, cfg.n_symbols, gen)
        search.eval()
        with torch.no_grad():
            _, alignment = search(src, lengths, tgt[:, :-1], return_alignment=True)
        plot(
            cfg,
            task,
            edges,
            m[f"{task}_accuracy_attention"],
            m[f"{task}_accuracy_no_attention"],
            alignment[0].numpy(),
            src[0].tolist(),
            ctx.figure_path(f"accuracy_vs_length_{task}.png"),
        )
