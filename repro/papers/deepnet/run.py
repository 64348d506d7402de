"""Measurements for DeepNet. See __init__.py for the claims."""

from __future__ import annotations

import copy
import math

import torch

from repro.common.data import lm_token_streams, random_windows, sequential_windows
from repro.common.stats import paired_differences, seeds_for, unigram_entropy
from repro.context import RunContext

from . import FAILED_MARGIN_NATS
from .model import DeepPostLN, sublayer_parameters

VARIANTS = {"post_ln": False, "deepnorm": True}
LABELS = {"post_ln": "Post-LN", "deepnorm": "DeepNorm"}


def build(cfg, n_layer: int, deepnorm: bool, seed: int, train: bool = False) -> DeepPostLN:
    """The same seed gives both variants the same draws; only α and β differ.

    ``train=True``: the training model's shape (``train_*`` fields), else the update
    measurement's (``d_model``, ``n_head``, ``d_ff``, ``seq_len``)."""
    torch.manual_seed(seed)
    if train:
        dims = (cfg.train_seq_len, cfg.train_d_model, n_layer, cfg.train_n_head, cfg.train_d_ff)
    else:
        dims = (cfg.seq_len, cfg.d_model, n_layer, cfg.n_head, cfg.d_ff)
    return DeepPostLN(cfg.vocab_size, *dims, deepnorm)


def relative_update(model: torch.nn.Module, f0: torch.Tensor, x: torch.Tensor) -> float:
    """‖F(x; θ) − F(x; θ_0)‖ / ‖F(x; θ_0)‖ for the model's current θ and a stored F(x; θ_0).

    F is the top layer's output (a LayerNorm output, so ‖F(x; θ_0)‖ ≈ √(B·T·d) for both
    variants); the division makes the number read as "share of the output that moved".
    """
    with torch.no_grad():
        f = model.hidden(x)
    return (torch.linalg.norm(f - f0) / torch.linalg.norm(f0)).item()


@torch.no_grad()
def val_loss(model: torch.nn.Module, batches: list) -> float:
    losses = [model(x, y)[1].item() for x, y in batches]
    return sum(losses) / len(losses)


def train(cfg, deepnorm: bool, train_ids, val_batches, seed: int, ctx: RunContext) -> dict:
    """Adam with linear warm-up to cfg.lr then constant; no gradient clipping, since a clip
    would hide exactly the instability the claim is about. Stops at the first non-finite loss."""
    model = build(cfg, cfg.train_layers, deepnorm, seed, train=True)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), eps=1e-8)
    batches = random_windows(
        train_ids, cfg.train_batch, cfg.train_seq_len, generator=torch.Generator().manual_seed(seed)
    )
    initial = val_loss(model, val_batches)
    losses: list[float | None] = []
    name = "deepnorm" if deepnorm else "post_ln"
    for step in ctx.progress(range(cfg.steps), desc=f"train {LABELS[name]}, seed {seed}"):
        for g in opt.param_groups:
            g["lr"] = cfg.lr * min(1.0, (step + 1) / cfg.warmup)
        x, y = next(batches)
        _, loss = model(x, y)
        if not math.isfinite(loss.item()):
            break
        losses.append(loss.item())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    final = val_loss(model, val_batches)
    finite = len(losses) == cfg.steps and math.isfinite(final)
    return {
        "initial_val_loss": initial,
        "final_val_loss": final if math.isfinite(final) else None,
        "diverged": not finite,
        "steps_done": len(losses),
        "train_losses": losses,
        "loss_drop": initial - final if finite else None,
    }


def margin_below_unigram(r: dict, unigram: float, vocab_size: int) -> float:
    """Unigram entropy − final held-out loss of a training run, in nats; a diverged run is
    scored as a uniform prediction, ln |V|."""
    final = math.log(vocab_size) if r["diverged"] else r["final_val_loss"]
    return unigram - final


def trained(r: dict, unigram: float, cfg) -> bool:
    """DeepNorm's claim on one seed: finite, and at least the learned gate's margin
    (``cfg.learned_margin``) below unigram."""
    return not r["diverged"] and margin_below_unigram(r, unigram, cfg.vocab_size) >= (
        cfg.learned_margin
    )


def failed(r: dict, unigram: float, cfg) -> bool:
    """Post-LN's claim on one seed: it diverged, or it ended less than FAILED_MARGIN_NATS
    below unigram (or above it), i.e. it learned at most the token frequencies."""
    return r["diverged"] or margin_below_unigram(r, unigram, cfg.vocab_size) < FAILED_MARGIN_NATS


def one_step(model, params, opt_cls, lr: float, batch, f0, probe, **kw) -> float:
    """Take one optimiser step on ``params`` only; return the relative update of F."""
    opt = opt_cls(params, lr=lr, **kw)
    x, y = batch
    _, loss = model(x, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return relative_update(model, f0, probe)


def early_updates(cfg, n_layer: int, seed: int, train_ids, probe: torch.Tensor) -> dict:
    """For both variants from the same draws, all on the same training batches, the relative
    update of F:

    * ``adam``:          after each of the first Adam steps on every parameter (as in training),
      at ``update_lr`` (a first-order step);
    * ``adam_saturating``: the same at ``saturating_lr`` (the earlier preset's step, where
      the 100-layer Post-LN's F already moves by about its own norm);
    * ``adam_weights``:  after one Adam step on the sub-layer weight matrices only;
    * ``sgd_weights``:   after one SGD step on the sub-layer weight matrices only: the
      parameters and the kind of step Theorem 4.1 and the Table 1 derivation are about;
    * ``sgd_sublayers``: the same with the sub-layers' bias vectors also stepped;
    * ``sgd_all``:       after one SGD step on every parameter (LayerNorm gains/biases included).
    """
    gen = torch.Generator().manual_seed(10_000 + seed)
    windows = random_windows(train_ids, cfg.batch, cfg.seq_len, gen)
    batches = [next(windows) for _ in range(cfg.update_steps)]
    adam_kw = {"betas": (0.9, 0.98)}
    out = {}
    for name, deepnorm in VARIANTS.items():
        model = build(cfg, n_layer, deepnorm, seed)
        theta0 = copy.deepcopy(model.state_dict())
        with torch.no_grad():
            f0 = model.hidden(probe)
        r = {}
        for key, lr in (("adam", cfg.update_lr), ("adam_saturating", cfg.saturating_lr)):
            model.load_state_dict(theta0)
            adam = torch.optim.Adam(model.parameters(), lr=lr, **adam_kw)
            r[key] = []
            for x, y in batches:
                _, loss = model(x, y)
                adam.zero_grad(set_to_none=True)
                loss.backward()
                adam.step()
                r[key].append(relative_update(model, f0, probe))
        for key, opt_cls, lr, kw, sub in (
            ("adam_weights", torch.optim.Adam, cfg.update_lr, adam_kw, "weights"),
            ("sgd_weights", torch.optim.SGD, cfg.sgd_lr, {}, "weights"),
            ("sgd_sublayers", torch.optim.SGD, cfg.sgd_lr, {}, "sublayers"),
            ("sgd_all", torch.optim.SGD, cfg.sgd_lr, {}, "all"),
        ):
            model.load_state_dict(theta0)
            params = {
                "weights": sublayer_parameters(model),
                "sublayers": sublayer_parameters(model, biases=True),
                "all": list(model.parameters()),
            }[sub]
            r[key] = one_step(model, params, opt_cls, lr, batches[0], f0, probe, **kw)
        out[name] = r
    return out


def plot_training(runs: dict, h1: float, cfg, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, r in runs.items():
        status = "diverged" if r["diverged"] else f"val {r['final_val_loss']:.2f}"
        ax.plot(r["train_losses"], lw=1, label=f"{LABELS[name]} ({status})")
    ax.axhline(h1, color="k", ls=":", lw=1, label=f"unigram entropy {h1:.2f}")
    start = runs["deepnorm"]["initial_val_loss"]
    ax.axhline(start, color="gray", ls="--", lw=1, label=f"initial val loss {start:.2f}")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (nats/token)")
    ax.set_title(
        f"N = {cfg.train_layers} layers, d = {cfg.train_d_model}, lr {cfg.lr:g}, "
        f"warm-up {cfg.warmup}",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_updates(depths, upd: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    panels = (
        ("sgd_weights", "one SGD step, sub-layer weights (Thm 4.1)"),
        ("sgd_all", "one SGD step, more parameters"),
        ("adam_step1", "one Adam step, all parameters"),
    )
    colors = {"post_ln": "C0", "deepnorm": "C1"}
    for ax, (key, title) in zip(axes, panels):
        for name in VARIANTS:
            label = LABELS[name] + (", all parameters" if key == "sgd_all" else "")
            ax.loglog(depths, upd[name][key], "o-", color=colors[name], label=label)
        if key == "adam_step1":
            for name in VARIANTS:
                ax.loglog(
                    depths,
                    upd[name]["adam_weights"],
                    "s:",
                    color=colors[name],
                    label=f"{LABELS[name]}, sub-layer weights only",
                )
        if key == "sgd_all":
            for name in VARIANTS:
                ax.loglog(
                    depths,
                    upd[name]["sgd_sublayers"],
                    "s:",
                    color=colors[name],
                    label=f"{LABELS[name]}, sub-layer weights + biases",
                )
        ax.set_xlabel("layers N")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("‖F(x;θ) − F(x;θ₀)‖ / ‖F(x;θ₀)‖")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(cfg, ctx: RunContext) -> None:
    train_ids, val_ids, tok = lm_token_streams(vocab_size=cfg.vocab_size, max_docs=cfg.max_docs)
    val_batches = list(
        sequential_windows(
            val_ids, cfg.train_batch, cfg.train_seq_len, max_batches=cfg.eval_batches
        )
    )
    seeds = seeds_for(ctx.seed, cfg.seeds)
    # The unigram floor on exactly the held-out targets the validation loss scores.
    h1 = unigram_entropy(train_ids, tok.get_vocab_size(), torch.cat([y for _, y in val_batches]))
    ctx.metrics.update(unigram_entropy=h1, log_vocab=math.log(cfg.vocab_size), seeds=seeds)

    # 1. early model update per depth (cheap, so first); one initialisation per seed and depth
    probe = next(sequential_windows(val_ids, cfg.probe_batch, cfg.seq_len, max_batches=1))[0]
    keys = (
        "adam_step1",
        "adam_last",
        "adam_saturating_step1",
        "adam_saturating_last",
        "adam_weights",
        "sgd_weights",
        "sgd_sublayers",
        "sgd_all",
    )
    # upd[name][key][i][j]: seed i, depth j
    upd = {n: {k: [[] for _ in seeds] for k in keys} for n in VARIANTS}
    for n_layer in ctx.progress(cfg.depths, desc="update vs depth"):
        for i, seed in enumerate(seeds):
            r = early_updates(cfg, n_layer, seed, train_ids, probe)
            for name in VARIANTS:
                u = upd[name]
                for key in ("adam", "adam_saturating"):
                    u[f"{key}_step1"][i].append(r[name][key][0])
                    u[f"{key}_last"][i].append(r[name][key][-1])
                for k in ("adam_weights", "sgd_weights", "sgd_sublayers", "sgd_all"):
                    u[k][i].append(r[name][k])

    def growth(name: str, key: str) -> list[float]:
        """Per seed: update at the largest depth over the update at the smallest."""
        return [row[-1] / row[0] for row in upd[name][key]]

    def ratio(key: str) -> list[float]:
        """Per seed: Post-LN's update over DeepNorm's at the largest depth."""
        return [p[-1] / d[-1] for p, d in zip(upd["post_ln"][key], upd["deepnorm"][key])]

    ctx.metrics.update(depths=list(cfg.depths), updates=upd)
    for name in VARIANTS:
        for key, label in (
            ("sgd_weights", "sgd"),
            ("sgd_sublayers", "sgd_with_biases"),
            ("sgd_all", "sgd_all_params"),
            ("adam_step1", "adam"),
            ("adam_weights", "adam_weights_only"),
            ("adam_saturating_step1", "adam_saturating"),
        ):
            ctx.metrics[f"{name}_update_growth_{label}"] = growth(name, key)
    # fixed-size Adam steps on the weight matrices alone: DeepNorm's growth against
    # sqrt(N_max / N_min), what coherent per-layer terms of size β/α ∝ 1/√N add up to
    ctx.metrics["sqrt_depth_ratio"] = math.sqrt(cfg.depths[-1] / cfg.depths[0])
    ctx.metrics["update_ratio_post_ln_over_deepnorm"] = ratio("adam_last")
    ctx.metrics["update_ratio_post_ln_over_deepnorm_saturating"] = ratio("adam_saturating_last")
    mean_upd = {
        n: {k: [sum(col) / len(col) for col in zip(*rows)] for k, rows in u.items()}
        for n, u in upd.items()
    }
    plot_updates(list(cfg.depths), mean_upd, ctx.figure_path("update_vs_depth.png"))

    # 2. training at depth: per seed, the same draws, data order, steps, lr and warm-up for both
    def margin(r: dict) -> float:
        return margin_below_unigram(r, h1, cfg.vocab_size)

    per: dict[str, dict[str, list]] = {n: {} for n in VARIANTS}
    first_runs = {}
    for seed in seeds:
        for name, deepnorm in VARIANTS.items():
            r = train(cfg, deepnorm, train_ids, val_batches, seed, ctx)
            if seed == seeds[0]:
                first_runs[name] = r
            for k in ("initial_val_loss", "final_val_loss", "diverged", "loss_drop", "steps_done"):
                per[name].setdefault(k, []).append(r[k])
            per[name].setdefault("trained", []).append(trained(r, h1, cfg))
            per[name].setdefault("failed", []).append(failed(r, h1, cfg))
            per[name].setdefault("below_unigram", []).append(margin(r))
            ctx.metrics[name] = per[name]
            ctx.metrics[f"{name}_below_unigram"] = per[name]["below_unigram"]
        ctx.metrics["train_losses"] = {n: r["train_losses"] for n, r in first_runs.items()}
        ctx.metrics["deepnorm_trains"] = per["deepnorm"]["trained"]
        ctx.metrics["post_ln_fails"] = per["post_ln"]["failed"]
        # paired by seed: how far DeepNorm's held-out loss ends below Post-LN's (reported)
        ctx.metrics["deepnorm_gain_over_post_ln"] = paired_differences(
            per["deepnorm"]["below_unigram"], per["post_ln"]["below_unigram"]
        )
    plot_training(first_runs, h1, cfg, ctx.figure_path("loss_curves.png"))
