"""Measurements for GPT (Radford et al. 2018), one pre-trained model per seed. See __init__.py
for the claims."""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from repro.common.data import lm_token_streams, load_brown, split_documents
from repro.common.stats import (
    below_unigram,
    inside_grid,
    paired_differences,
    seeds_for,
    unigram_entropy,
)
from repro.context import RunContext

from .model import GPT, GPTConfig

# The labelled task: the Brown corpus's own top-level division of its fifteen genres
# (categories A–J against K–R). Four finer groups were tried first; with a few hundred
# passages of 24–63 tokens a bag-of-words classifier reached 41% against a 38% majority, so
# that task could not show any difference between the arms.
GENRE_GROUPS = {
    "informative": (
        "news", "editorial", "reviews", "religion", "hobbies", "lore", "belles_lettres",
        "government", "learned",
    ),
    "imaginative": ("fiction", "mystery", "science_fiction", "adventure", "romance", "humor"),
}  # fmt: skip
CLASSES = tuple(GENRE_GROUPS)
LABEL_OF = {g: i for i, group in enumerate(GENRE_GROUPS.values()) for g in group}


# --------------------------------------------------------------------------- language model
def unigram_cross_entropy(train_ids, val_ids, vocab_size: int) -> tuple[float, float]:
    """(entropy of the training unigram distribution, its cross-entropy on held-out text),
    nats/token, add-one smoothed so that no held-out token has probability 0."""
    return unigram_entropy(train_ids, vocab_size), unigram_entropy(train_ids, vocab_size, val_ids)


def lr_factor(step: int, total: int, warmup: int, decay: str) -> float:
    """Linear warm-up, then cosine (pre-training) or linear (fine-tuning) decay to 0 (§4.1)."""
    if step < warmup:
        return (step + 1) / warmup
    frac = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * frac)) if decay == "cosine" else 1.0 - frac


def make_optimizer(model, lr: float):
    """Adam with the paper's modified L2 (decoupled weight decay 0.01 on weight matrices)."""
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    rest = [p for n, p in model.named_parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999))


def eval_windows(ids, n: int, seq_len: int):
    """n windows (x, y) spread evenly over the held-out stream."""
    starts = torch.linspace(0, len(ids) - seq_len - 2, n).long()
    idx = starts[:, None] + torch.arange(seq_len + 1)  # (n, T+1)
    chunk = ids[idx]
    return chunk[:, :-1], chunk[:, 1:]


@torch.no_grad()
def lm_eval(model, x, y, batch: int = 64) -> float:
    model.eval()
    total = sum(model.lm_loss(x[i : i + batch], y[i : i + batch]).item() * len(x[i : i + batch])
                for i in range(0, len(x), batch))  # fmt: skip
    model.train()
    return total / len(x)


def pretrain(cfg, gcfg: GPTConfig, train_ids, val_x, val_y, ctx: RunContext, gen):
    """Maximise L1 on contiguous windows of the training stream; return model and curves."""
    model = GPT(gcfg)
    opt = make_optimizer(model, cfg.pretrain_lr)
    n = len(train_ids) - cfg.seq_len - 1
    train_curve, val_curve = [], [(0, lm_eval(model, val_x, val_y))]
    for step in ctx.progress(range(cfg.pretrain_steps), desc="pre-train"):
        for g in opt.param_groups:
            g["lr"] = cfg.pretrain_lr * lr_factor(step, cfg.pretrain_steps, cfg.warmup, "cosine")
        starts = torch.randint(0, n, (cfg.pretrain_batch,), generator=gen)
        chunk = train_ids[starts[:, None] + torch.arange(cfg.seq_len + 1)]  # (B, T+1)
        loss = model.lm_loss(chunk[:, :-1], chunk[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        train_curve.append(loss.item())
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.pretrain_steps:
            val_curve.append((step + 1, lm_eval(model, val_x, val_y)))
    model.eval()
    return model, train_curve, val_curve


# --------------------------------------------------------------------------- causal mask
@torch.no_grad()
def future_leak(model, x, trials: int, gen, batch: int = 50) -> float:
    """Largest |Δ logit| at positions ≤ t when every token after t is replaced at random.

    Each trial takes a real held-out window, a random cut t in [0, T−2] and fresh random
    tokens for positions t+1 … T−1; the logits at 0 … t are compared before and after."""
    model.eval()
    T, V = x.shape[1], model.cfg.vocab_size
    worst = 0.0
    for i in range(0, trials, batch):
        b = min(batch, trials - i)
        rows = torch.randint(0, len(x), (b,), generator=gen)
        orig = x[rows]  # (b, T)
        t = torch.randint(0, T - 1, (b,), generator=gen)
        future = torch.arange(T)[None] > t[:, None]  # (b, T): True after the cut
        noise = torch.randint(0, V, (b, T), generator=gen)
        pert = torch.where(future, noise, orig)
        diff = (model(orig) - model(pert)).abs().amax(-1)  # (b, T)
        worst = max(worst, diff[~future].max().item())
    return worst


# --------------------------------------------------------------------------- labelled task
def split_stream(ids, docs, eos: int):
    """Each document's token ids with its class label, cut from the LM stream, which holds the
    documents in split order, each followed by [EOS] (cheaper than encoding them again)."""
    ends = (ids == eos).nonzero().flatten().tolist()
    if len(ends) != len(docs):
        raise ValueError(f"stream holds {len(ends)} documents, the split {len(docs)}")
    starts = [0] + [e + 1 for e in ends[:-1]]
    return [(ids[a:b], LABEL_OF[d.genre]) for a, b, d in zip(starts, ends, docs)]


def passage(ids, length: int, start: int, seq_len: int, extract: int, pad: int):
    """A passage of ``length`` tokens followed by the extract token, padded to seq_len."""
    row = torch.full((seq_len,), pad, dtype=torch.long)
    row[:length] = ids[start : start + length]
    row[length] = extract
    return row


def sample_passages(docs, n: int, cfg, special, gen):
    """(idx (n, T), lengths (n,), labels (n,)): ``n`` passages, the classes in turn (so
    balanced), each from a random document of its class at a random place, of a random
    length in [min_passage, seq_len − 1]. Lengths count the extract token."""
    extract, pad = special
    by_class = [[d for d in docs if d[1] == c] for c in range(len(CLASSES))]
    rows, lengths, labels = [], [], []
    for i in range(n):
        group = by_class[i % len(CLASSES)]
        ids, label = group[int(torch.randint(0, len(group), (1,), generator=gen))]
        length = int(torch.randint(cfg.min_passage, cfg.seq_len, (1,), generator=gen))
        start = int(torch.randint(0, len(ids) - length, (1,), generator=gen))
        rows.append(passage(ids, length, start, cfg.seq_len, extract, pad))
        lengths.append(length + 1)
        labels.append(label)
    return torch.stack(rows), torch.tensor(lengths), torch.tensor(labels)


def labelled_task(cfg, tok, train_ids, val_ids, seed: int):
    """(labelled sets, one per fine-tuning seed; dev; test). Test passages come from the
    held-out documents (unseen in pre-training); dev passages from every tenth training
    document of each class, which the labelled passages never use."""
    train_docs, val_docs = split_documents(load_brown(), held_out=0.1, seed=cfg.split_seed)
    eos = tok.token_to_id("[EOS]")
    special = (tok.token_to_id("[CLS]"), tok.token_to_id("[PAD]"))
    train_enc = split_stream(train_ids, train_docs, eos)
    test_enc = split_stream(val_ids, val_docs, eos)
    by_class = [[d for d in train_enc if d[1] == c] for c in range(len(CLASSES))]
    dev_enc = [d for group in by_class for d in group[::10]]
    label_enc = [d for group in by_class for i, d in enumerate(group) if i % 10]
    eval_gen = torch.Generator().manual_seed(10_000 + seed)
    dev = sample_passages(dev_enc, cfg.n_eval, cfg, special, eval_gen)
    test = sample_passages(test_enc, cfg.n_eval, cfg, special, eval_gen)
    labelled = [
        sample_passages(
            label_enc, cfg.n_labelled, cfg, special, torch.Generator().manual_seed(seed + s)
        )
        for s in range(cfg.seeds)
    ]
    counts = {
        "test_docs": [sum(d[1] == c for d in test_enc) for c in range(len(CLASSES))],
        "dev_docs": [sum(d[1] == c for d in dev_enc) for c in range(len(CLASSES))],
        "labelled_docs": [sum(d[1] == c for d in label_enc) for c in range(len(CLASSES))],
    }
    return labelled, dev, test, counts


@torch.no_grad()
def accuracy(model, data, batch: int = 128) -> float:
    model.eval()
    idx, lengths, labels = data
    right = sum(
        (model.classify(idx[i : i + batch], lengths[i : i + batch]).argmax(-1)
         == labels[i : i + batch]).sum().item()
        for i in range(0, len(idx), batch)
    )  # fmt: skip
    return right / len(idx)


def finetune(cfg, gcfg: GPTConfig, init_state, train, lr, lm_weight, seed: int):
    """Fine-tune (or train from scratch when init_state is None) with L3 = L2 + λ·L1;
    returns the fine-tuned model (in eval mode)."""
    torch.manual_seed(seed)
    model = GPT(replace(gcfg, dropout=cfg.finetune_dropout))
    if init_state is not None:
        model.load_state_dict(init_state)
    model.add_classifier(len(CLASSES))
    model.train()
    opt = make_optimizer(model, lr)
    gen = torch.Generator().manual_seed(seed)
    idx, lengths, labels = train
    warm = max(1, cfg.finetune_steps // 20)
    for step in range(cfg.finetune_steps):
        for g in opt.param_groups:
            g["lr"] = lr * lr_factor(step, cfg.finetune_steps, warm, "linear")
        b = torch.randint(0, len(idx), (cfg.finetune_batch,), generator=gen)
        loss = model.finetune_loss(idx[b], lengths[b], labels[b], lm_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()


def choose_lr(dev_by_lr: dict) -> tuple[float, dict, bool]:
    """(best lr, mean dev accuracy per lr, whether the best is inside the grid): one learning
    rate per arm, the one with the best dev accuracy averaged over seeds (ties: the smaller
    lr, the first in the sorted grid)."""
    if not dev_by_lr:
        raise ValueError("choose_lr needs at least one learning rate")
    mean = {lr: sum(v) / len(v) for lr, v in sorted(dev_by_lr.items())}
    best = max(mean, key=mean.get)
    return best, mean, inside_grid(list(mean), best)


# --------------------------------------------------------------------------- figures
def plot_pretraining(train_curve, val_curve, unigram_ce, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    k = 20  # running mean over 20 steps smooths the minibatch noise
    if len(train_curve) > k:
        sm = torch.tensor(train_curve).unfold(0, k, 1).mean(-1)
        ax.plot(range(k, len(train_curve) + 1), sm, lw=1, label="training (20-step mean)")
    steps, vals = zip(*val_curve)
    ax.plot(steps, vals, "o-", label="held-out documents")
    ax.axhline(unigram_ce, color="k", ls=":", lw=1, label="unigram cross-entropy")
    ax.set_xlabel("pre-training step")
    ax.set_ylabel("LM loss (nats/token)")
    ax.set_title("generative pre-training on Brown")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_finetuning(arms: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    names = list(arms)
    means = [a["test_mean"] for a in arms.values()]
    ax.bar(range(len(names)), means, color=["C0", "C0", "C1", "C1"][: len(names)], alpha=0.7)
    for i, a in enumerate(arms.values()):
        ax.plot([i] * len(a["test"]), a["test"], "k.", ms=5)
    ax.axhline(1 / len(CLASSES), color="gray", ls="--", lw=1, label="chance (balanced test)")
    ax.set_xticks(range(len(names)), names, fontsize=8)
    ax.set_ylabel("test accuracy (held-out documents)")
    ax.set_ylim(0, 1)
    ax.set_title("informative vs imaginative prose: with and without pre-training", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- main
def main(cfg, ctx: RunContext) -> None:
    train_ids, val_ids, tok = lm_token_streams(
        vocab_size=cfg.vocab_size, kind="bpe", seed=cfg.split_seed
    )
    gcfg = GPTConfig(
        vocab_size=cfg.vocab_size,
        seq_len=cfg.seq_len,
        d_model=cfg.d_model,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        dropout=cfg.dropout,
    )
    entropy, unigram_ce = unigram_cross_entropy(train_ids, val_ids, cfg.vocab_size)
    val_x, val_y = eval_windows(val_ids, cfg.eval_windows, cfg.seq_len)
    ctx.metrics.update(unigram_entropy=entropy, unigram_cross_entropy=unigram_ce)
    labelled, dev, test, counts = labelled_task(cfg, tok, train_ids, val_ids, ctx.seed)
    if len(set(cfg.finetune_lrs)) < 3:
        raise ValueError(
            f"finetune_lrs: {cfg.finetune_lrs!r}; each arm picks its lr from a grid of ≥ 3 values"
        )
    ctx.metrics.update(document_counts=counts, classes=list(CLASSES))
    lam = cfg.lm_weight
    # arm name -> (metric key prefix, starts from the pre-trained weights, λ)
    arm_spec = {
        f"pre-trained λ={lam:g}": ("pretrained_aux", True, lam),
        "pre-trained λ=0": ("pretrained_noaux", True, 0.0),
        f"scratch λ={lam:g}": ("scratch_aux", False, lam),
        "scratch λ=0": ("scratch_noaux", False, 0.0),
    }
    names = list(arm_spec)
    dev_acc: dict = {}  # arm -> lr -> [dev accuracy per seed]
    tuned: dict = {}  # (arm, lr, seed index) -> fine-tuned weights, scored on test once chosen
    m = ctx.metrics
    for i, seed in enumerate(seeds_for(ctx.seed, cfg.seeds)):
        # --- pre-training, one model per seed (its own init and batches)
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model, train_curve, val_curve = pretrain(cfg, gcfg, train_ids, val_x, val_y, ctx, gen)
        lm_loss = val_curve[-1][1]
        m.setdefault("heldout_lm_loss", []).append(lm_loss)
        m.setdefault("heldout_lm_loss_init", []).append(val_curve[0][1])
        m["lm_gain_over_unigram"] = below_unigram(m["heldout_lm_loss"], unigram_ce)
        m["pretrained_below_unigram"] = m["lm_gain_over_unigram"]  # the learned gate's name
        ctx.log(f"  seed {seed}: held-out LM loss {lm_loss:.4f} (unigram {unigram_ce:.4f})")
        if i == 0:
            m.update(
                pretrain_curve=val_curve,
                n_params=sum(p.numel() for p in model.parameters()),
                pretrain_tokens=cfg.pretrain_steps * cfg.pretrain_batch * cfg.seq_len,
            )
            plot_pretraining(train_curve, val_curve, unigram_ce, ctx.figure_path("pretraining.png"))
            # --- the mask, then the same weights without it (checks of our model)
            m["causal_max_abs_diff"] = future_leak(model, val_x, cfg.perturb_trials, gen)
            model.set_causal(False)
            m["control_max_abs_diff"] = future_leak(model, val_x, cfg.perturb_trials, gen)
            model.set_causal(True)

        # --- four fine-tuning arms, paired: this seed's labelled passages, head init and
        # batch order for all four, and this seed's pre-trained weights for two of them;
        # every arm is run at every learning rate of the one shared grid and scored on dev
        pre_state = {k: v.clone() for k, v in model.state_dict().items()}
        for a, (_, pretrained, weight) in arm_spec.items():
            state = pre_state if pretrained else None
            for lr in cfg.finetune_lrs:
                ft = finetune(cfg, gcfg, state, labelled[i], lr, weight, 1000 * seed)
                dev_acc.setdefault(a, {}).setdefault(lr, []).append(accuracy(ft, dev))
                tuned[a, lr, i] = ft.state_dict()

    # each arm keeps the learning rate with the best dev accuracy averaged over seeds; only
    # that lr's models are scored on the test passages (held-out documents)
    results = {}
    probe = GPT(replace(gcfg, dropout=0.0), n_classes=len(CLASSES))
    for a, (key, _, _) in arm_spec.items():
        best, dev_mean, inside = choose_lr(dev_acc[a])
        test_acc = []
        for i in range(cfg.seeds):
            probe.load_state_dict(tuned[a, best, i])
            test_acc.append(accuracy(probe, test))
        results[a] = {
            "lr": best,
            "test": test_acc,
            "test_mean": sum(test_acc) / len(test_acc),
            "dev_mean_by_lr": {str(lr): v for lr, v in dev_mean.items()},
        }
        m[f"{key}_lr"] = best
        m[f"{key}_lr_inside_grid"] = inside  # the inside-grid gate's metric
        # the baseline gate's metric: test accuracy above chance (the classes are balanced)
        m[f"{key}_above_chance"] = [acc - 1.0 / len(CLASSES) for acc in test_acc]
    test_acc = {a: r["test"] for a, r in results.items()}
    m["finetune"] = results
    m["test_accuracy"] = {a: r["test_mean"] for a, r in results.items()}
    # per-seed paired differences
    m["finetune_gain_from_pretraining"] = paired_differences(test_acc[names[0]], test_acc[names[2]])
    m["finetune_gain_from_pretraining_lambda0"] = paired_differences(
        test_acc[names[1]], test_acc[names[3]]
    )
    m["aux_lm_gain"] = paired_differences(test_acc[names[0]], test_acc[names[1]])
    m["aux_lm_gain_scratch"] = paired_differences(test_acc[names[2]], test_acc[names[3]])
    plot_finetuning(results, ctx.figure_path("finetuning.png"))
