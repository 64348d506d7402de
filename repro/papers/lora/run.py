"""LoRA against full fine-tuning on a genre shift of the Brown corpus; merging; the peft peer.
See __init__.py for the claims."""

from __future__ import annotations

import copy
import math
import statistics
import time

import torch

from repro.common.data import (
    encode_documents,
    load_brown,
    random_windows,
    split_documents,
    train_tokenizer,
)
from repro.common.stats import inside_grid, seeds_for, unigram_entropy
from repro.common.tinylm import LMConfig, TinyLM, cosine_lr, evaluate
from repro.context import RunContext

from .lora import LoRALinear, add_lora, merge_lora, trainable_params

# The Brown corpus's imaginative prose (categories K–R); the other nine genres are informative
# prose. The model is pretrained on the informative genres and adapted to these.
FICTION = {"fiction", "mystery", "science_fiction", "adventure", "romance", "humor"}

# The layers the peft peer adapts, in our notation: every weight matrix of every block taken
# whole (peft adapts whole nn.Linear modules; it has no notion of blocks of a fused qkv matrix)
PEER_TARGETS = {"qkv": (1, (0,)), "proj": (1, (0,)), "w_in": (1, (0,)), "w_out": (1, (0,))}


# --------------------------------------------------------------------------- data
def genre_shift_streams(cfg) -> dict[str, torch.Tensor]:
    """Token streams: 'source' (informative prose, training documents), 'source_val' (held-out
    informative documents), 'target' (fiction, training documents), and the held-out fiction
    documents split in two halves, 'dev' (to pick learning rates) and 'test' (to report). The
    tokenizer sees source documents only."""
    train, held = split_documents(load_brown(), held_out=0.1, seed=0)
    src = [d for d in train if d.genre not in FICTION]
    tok = train_tokenizer(src, vocab_size=cfg.vocab_size)
    tgt_held = [d for d in held if d.genre in FICTION]
    parts = {
        "source": src,
        "source_val": [d for d in held if d.genre not in FICTION],
        "target": [d for d in train if d.genre in FICTION],
        "dev": tgt_held[0::2],
        "test": tgt_held[1::2],
    }
    return {k: torch.tensor(encode_documents(tok, v), dtype=torch.long) for k, v in parts.items()}


# --------------------------------------------------------------------------- training
def train(
    model, ids, steps: int, lr: float, batch: int, seq_len: int, seed: int, on_step=None
) -> list[float]:
    """AdamW (β = 0.9, 0.95, no weight decay) on the parameters that require gradients, cosine
    schedule with 5% warm-up, gradient clipping at 1; batches of ``batch`` random windows drawn
    from ``ids`` by a generator seeded with ``seed``. Returns the training loss of every step;
    ``on_step(step)`` is called after each step."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), weight_decay=0.0, foreach=True)
    batches = random_windows(ids, batch, seq_len, torch.Generator().manual_seed(seed))
    warm = max(1, steps // 20)
    losses = []
    model.train()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, steps, lr, warm)
        x, y = next(batches)
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(loss.item())
        if on_step is not None:
            on_step(step)
    model.eval()
    return losses


def val_loss(model, ids, cfg) -> float:
    return evaluate(model, ids, cfg.seq_len, batch_size=16, max_batches=cfg.eval_batches)


def method_model(base: TinyLM, method: str, cfg) -> TinyLM:
    """A copy of ``base`` ready to fine-tune: 'full' (every weight), 'lora<r>' (rank r on W_q
    and W_v, the rest frozen)."""
    model = copy.deepcopy(base)
    if method.startswith("lora"):
        add_lora(model, r=int(method[4:]), alpha=cfg.alpha)
    elif method != "full":
        raise ValueError(f"unknown method {method!r}: use 'full' or 'lora<r>'")
    return model


def pretrain(cfg, data, seed: int) -> tuple[TinyLM, list]:
    """The base model of one seed, trained on the source genres; returns it and its held-out
    source loss at every quarter of the run (to show where the curve has got to)."""
    torch.manual_seed(seed)
    base = TinyLM(LMConfig.like(cfg))
    quarters = {round(cfg.pretrain_steps * q / 4) - 1 for q in (1, 2, 3, 4)}
    curve = [(0, val_loss(base, data["source_val"], cfg))]

    def on_step(step):
        if step in quarters:
            curve.append((step + 1, val_loss(base, data["source_val"], cfg)))

    batch = cfg.batch_size
    train(base, data["source"], cfg.pretrain_steps, cfg.pretrain_lr, batch, cfg.seq_len, seed + 1,
          on_step)  # fmt: skip
    return base, curve


# --------------------------------------------------------------------------- merge, latency
def race(slow, fast, rounds: int, iters: int) -> float:
    """Median over rounds of time(slow)/time(fast), measured in alternating blocks so that
    machine load during the measurement hits both alike. The clock is this process's CPU
    time: on a shared machine, time spent waiting for a core does not count."""
    for _ in range(2):
        slow()
        fast()
    ratios = []
    for r in range(rounds):
        order = (slow, fast) if r % 2 == 0 else (fast, slow)
        t = {}
        for fn in order:
            t0 = time.process_time()
            for _ in range(iters):
                fn()
            t[fn] = time.process_time() - t0
        ratios.append(t[slow] / t[fast])
    return statistics.median(ratios)


@torch.no_grad()
def merge_checks(base: TinyLM, adapted: TinyLM, cfg) -> dict:
    """Merged vs unmerged outputs, and forward time of the merged model against the base
    model (same architecture: the claim is that merging adds nothing) and of the unmerged
    LoRA model against the base (the cost that merging removes)."""
    merged = merge_lora(copy.deepcopy(adapted))
    x = torch.randint(0, cfg.vocab_size, (cfg.latency_batch, cfg.seq_len))
    out_lora, out_merged = adapted(x), merged(x)
    rel = ((out_merged - out_lora).abs().max() / out_lora.abs().max()).item()
    n_lora_modules = sum(isinstance(m, LoRALinear) for m in merged.modules())
    same_shapes = [p.shape for p in merged.parameters()] == [p.shape for p in base.parameters()]
    rounds, iters = cfg.latency_rounds, cfg.latency_iters
    return {
        "merge_max_rel_diff": rel,
        "merged_is_plain_architecture": bool(n_lora_modules == 0 and same_shapes),
        "latency_merged_over_base": race(lambda: merged(x), lambda: base(x), rounds, iters),
        "latency_unmerged_over_base": race(lambda: adapted(x), lambda: base(x), rounds, iters),
    }


# --------------------------------------------------------------------------- the peft peer
def peft_check(seed: int) -> float | None:
    """Our LoRALinear and peft's LoRA layer, given the same W₀, A and B (and α, r), on the
    same input: largest relative difference of the outputs. None when peft is missing."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        return None
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for d_in, d_out, r, alpha in ((16, 24, 1, 8.0), (32, 32, 4, 8.0), (64, 48, 8, 16.0)):
        base = torch.nn.Sequential()
        base.add_module("proj", torch.nn.Linear(d_in, d_out))
        ours = LoRALinear(copy.deepcopy(base.proj), r=r, alpha=alpha)
        with torch.no_grad():
            ours.A[0].copy_(torch.randn(r, d_in, generator=gen))
            ours.B[0].copy_(torch.randn(d_out, r, generator=gen))  # non-zero: a trained update
        cfg = LoraConfig(r=r, lora_alpha=alpha, target_modules=["proj"], lora_dropout=0.0)
        peer = get_peft_model(copy.deepcopy(base), cfg)
        layer = peer.base_model.model.proj
        with torch.no_grad():
            layer.lora_A["default"].weight.copy_(ours.A[0])
            layer.lora_B["default"].weight.copy_(ours.B[0])
        x = torch.randn(5, 7, d_in, generator=gen)
        a, b = ours(x), peer(x)
        worst = max(worst, ((a - b).abs().max() / b.abs().max()).item())
    return worst


def lora_pairs(ours: torch.nn.Module, peer) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(our tensor, peft's tensor) for every A and B of every adapted layer, matched by the
    layer's name in the model."""
    pairs = []
    inner = peer.base_model.model
    for name, module in ours.named_modules():
        if isinstance(module, LoRALinear):
            layer = inner.get_submodule(name)
            pairs.append((module.A[0], layer.lora_A["default"].weight))
            pairs.append((module.B[0], layer.lora_B["default"].weight))
    return pairs


def peft_training_check(seed: int, steps: int, r: int = 4, alpha: float = 8.0, scale=None):
    """Train our LoRA and peft's (LoraConfig + get_peft_model) on the same TinyLM, from the same
    A (B = 0 in both) and on the same batches, with our training loop, for ``steps`` optimizer
    steps; every weight matrix of both blocks is adapted whole (PEER_TARGETS). Returns the
    largest relative differences of the per-step losses and of the final A, B, how far A
    moved, and both loss curves; None when peft is missing. ``scale`` overrides our layers'
    α/r (only to show that the check can fail)."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        return None
    lm = LMConfig(vocab_size=96, seq_len=16, d_model=32, n_layer=2, n_head=4)
    torch.manual_seed(seed)
    base = TinyLM(lm)
    ours = add_lora(copy.deepcopy(base), r=r, alpha=alpha, targets=PEER_TARGETS)
    config = LoraConfig(
        r=r, lora_alpha=alpha, target_modules=sorted(PEER_TARGETS), lora_dropout=0.0
    )
    peer = get_peft_model(copy.deepcopy(base), config)
    pairs = lora_pairs(ours, peer)
    with torch.no_grad():
        for mine, theirs in pairs:
            theirs.copy_(mine)  # our init (A random, B zero) in both
    if scale is not None:
        for m in ours.modules():
            if isinstance(m, LoRALinear):
                m.scale = scale
    start = [mine.detach().clone() for mine, _ in pairs]
    n_peer = sum(p.numel() for p in peer.parameters() if p.requires_grad)
    if n_peer != trainable_params(ours):
        raise RuntimeError(f"peft trains {n_peer} parameters, ours {trainable_params(ours)}")
    ids = torch.randint(0, lm.vocab_size, (4096,), generator=torch.Generator().manual_seed(seed))
    # a rate where LoRA moves visibly in a few steps
    a = train(ours, ids, steps, 1e-2, 8, lm.seq_len, seed)
    b = train(peer, ids, steps, 1e-2, 8, lm.seq_len, seed)
    loss_rel = max(abs(x - y) / abs(y) for x, y in zip(a, b))
    weight_rel = max(
        ((mine - theirs).abs().max() / theirs.abs().max()).item() for mine, theirs in pairs
    )
    # how far training moved A (which starts random; B starts at zero), relative to A's size
    moved = max(
        ((mine - s).abs().max() / s.abs().max()).item()
        for (mine, _), s in zip(pairs[0::2], start[0::2])
    )
    return {
        "loss_max_rel_diff": loss_rel,
        "weight_max_rel_diff": weight_rel,
        "a_update_rel_size": moved,
        "losses_ours": a,
        "losses_peft": b,
    }


# --------------------------------------------------------------------------- lr choice
def choose_lr(dev_by_lr: dict) -> tuple[float, dict, bool]:
    """(best lr, mean dev loss per lr, whether the best is inside the grid): one learning rate
    per method, the one with the lowest dev loss averaged over seeds (ties: the smaller lr)."""
    if not dev_by_lr:
        raise ValueError("choose_lr needs at least one learning rate")
    mean = {lr: sum(v) / len(v) for lr, v in sorted(dev_by_lr.items())}
    best = min(mean, key=mean.get)
    return best, mean, inside_grid(list(mean), best)


# --------------------------------------------------------------------------- figure
def plot(dev_mean: dict, chosen: dict, base_dev: float, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.4, 3.8))
    for method, by_lr in dev_mean.items():
        lrs = sorted(by_lr)
        line = ax.semilogx(lrs, [by_lr[lr] for lr in lrs], "o-", label=method)[0]
        ax.plot([chosen[method]], [by_lr[chosen[method]]], "*", ms=12, color=line.get_color())
    ax.axhline(base_dev, color="grey", ls="--", lw=1, label="pretrained, no tuning")
    lo = min(min(v.values()) for v in dev_mean.values())
    ax.set_ylim(lo - 0.05, base_dev + 0.15)
    ax.set_xlabel("peak learning rate")
    ax.set_ylabel("dev loss on held-out fiction (nats/token)")
    ax.set_title("informative prose → fiction: dev loss per rate (mean over seeds; ★ chosen)",
                 fontsize=8)  # fmt: skip
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# --------------------------------------------------------------------------- main
def main(cfg, ctx: RunContext) -> None:
    if len(set(cfg.lrs)) < 3:
        raise ValueError(f"lrs: {cfg.lrs!r}; each method picks its lr from a grid of ≥ 3 values")
    if cfg.claim_rank not in cfg.ranks or 1 not in cfg.ranks:
        raise ValueError(f"ranks {cfg.ranks!r} must hold 1 and claim_rank={cfg.claim_rank}")
    m = ctx.metrics
    m["peft_max_rel_diff"] = peft_check(ctx.seed)
    peer = peft_training_check(ctx.seed, cfg.peft_steps)
    if peer is None:
        ctx.skip("peft-agrees", "peft is not installed")
        ctx.skip("peft-trains-the-same", "peft is not installed")
    else:
        m["peft_train"] = peer
        m["peft_train_max_rel_diff"] = max(peer["loss_max_rel_diff"], peer["weight_max_rel_diff"])

    data = genre_shift_streams(cfg)
    m["tokens"] = {k: len(v) for k, v in data.items()}
    # The learned gates' floors: unigram models of the training text of each genre, scored on
    # the held-out tokens that val_loss() reads (source: the base model; fiction: the methods)
    n_eval = cfg.eval_batches * 16 * cfg.seq_len + 1
    unigram_src = unigram_entropy(data["source"], cfg.vocab_size, data["source_val"][1:n_eval])
    unigram = unigram_entropy(data["target"], cfg.vocab_size, data["test"][1:n_eval])
    m.update(unigram_source_nats=unigram_src, unigram_nats=unigram)
    lora_key = f"lora{cfg.claim_rank}"
    methods = ["full"] + [f"lora{r}" for r in cfg.ranks]
    dev: dict = {k: {} for k in methods}  # method -> lr -> [dev loss per seed]
    tuned: dict = {}  # (method, lr, seed index) -> fine-tuned model, tested once chosen
    for i, seed in enumerate(seeds_for(ctx.seed, cfg.seeds)):
        t0 = time.process_time()
        base, curve = pretrain(cfg, data, seed)
        m.setdefault("pretrain_cpu_s", []).append(time.process_time() - t0)
        m.setdefault("base_source_curve", []).append(curve)
        m.setdefault("base_below_unigram", []).append(unigram_src - curve[-1][1])
        # how much the held-out source loss still fell over the last quarter of pretraining
        m.setdefault("base_last_quarter_drop", []).append(curve[-2][1] - curve[-1][1])
        m.setdefault("base_test_loss", []).append(val_loss(base, data["test"], cfg))
        m.setdefault("base_dev_loss", []).append(val_loss(base, data["dev"], cfg))
        # every method, at every rate of the one grid, from this seed's base and on this
        # seed's fiction batches (paired)
        for method in ctx.progress(methods, desc=f"fine-tuning (seed {seed})"):
            for lr in cfg.lrs:
                model = method_model(base, method, cfg)
                train(model, data["target"], cfg.finetune_steps, lr, cfg.finetune_batch,
                      cfg.seq_len, seed + 2)  # fmt: skip
                dev[method].setdefault(lr, []).append(val_loss(model, data["dev"], cfg))
                tuned[method, lr, i] = model
                if i == 0 and method == lora_key and lr == cfg.lrs[len(cfg.lrs) // 2]:
                    # checks of our implementation: one of the first seed's LoRA models
                    total = sum(p.numel() for p in base.parameters())
                    m["total_params"] = total
                    m["claim_rank_trainable"] = trainable_params(model)
                    m["claim_rank_trainable_fraction"] = trainable_params(model) / total
                    m.update(merge_checks(base, model, cfg))
        ctx.log(f"  seed {seed}: base {m['base_test_loss'][-1]:.4f} "
                f"({m['base_below_unigram'][-1]:.3f} below the source unigram)")  # fmt: skip

    # each method keeps the rate with the lowest dev loss averaged over seeds; its test losses
    # (one per seed) are the ones compared
    chosen, dev_mean = {}, {}
    for method in methods:
        best, mean, inside = choose_lr(dev[method])
        chosen[method], dev_mean[method] = best, mean
        key = "claim_rank" if method == lora_key else method
        # only the chosen rate's models see the test half
        losses = [val_loss(tuned[method, best, i], data["test"], cfg) for i in range(cfg.seeds)]
        m[f"{method}_lr"] = best
        m[f"{method}_lr_inside_grid"] = inside
        m[f"{method}_test_loss"] = losses
        m[f"{method}_below_unigram"] = [unigram - x for x in losses]
        if key != method:
            m[f"{key}_lr_inside_grid"] = inside
            m[f"{key}_below_unigram"] = m[f"{method}_below_unigram"]
    m["dev_loss_by_lr"] = {k: {str(lr): v for lr, v in d.items()} for k, d in dev.items()}

    base_test = m["base_test_loss"]

    def shortfall(loss, ref):
        """(L − L_ref) / (L_pretrained − L_ref) per seed: 0 = as good as the reference, 1 = no
        better than the pretrained model."""
        return [(x - r) / (b - r) if b > r else math.inf for x, r, b in zip(loss, ref, base_test)]

    full = m["full_test_loss"]
    m["full_ft_gain"] = [b - x for b, x in zip(base_test, full)]
    for method in methods[1:]:
        m[f"{method}_gain"] = [b - x for b, x in zip(base_test, m[f"{method}_test_loss"])]
        m[f"{method}_shortfall_vs_full"] = shortfall(m[f"{method}_test_loss"], full)
    m["claim_rank_shortfall"] = m[f"{lora_key}_shortfall_vs_full"]
    m["rank1_shortfall_vs_claim_rank"] = shortfall(m["lora1_test_loss"], m[f"{lora_key}_test_loss"])
    plot(dev_mean, chosen, statistics.mean(m["base_dev_loss"]), ctx.figure_path("lora_vs_full.png"))
