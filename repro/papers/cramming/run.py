"""The Cramming reproduction: both recipes under one budget, then fine-tuning and throughput.

Order of work (each step's numbers go into ``ctx.metrics`` as soon as they exist):

1. corpus → document split → WordPiece tokenizer (cached) → packed 128-token sequences;
2. for every seed, pretrain the crammed and the original recipe for the same budget and
   evaluate both on the same held-out sequences with the same masks;
3. fine-tune each seed's crammed and original checkpoints and a randomly initialised crammed
   twin on the genre task, with the same settings and the same number of steps;
4. time training steps of our crammed encoder and of Hugging Face's BertForMaskedLM side by side
   (at the same nominal FFN width and at equal FFN FLOPs).
"""

from __future__ import annotations

import dataclasses
import statistics
from pathlib import Path

import torch

from repro.common.stats import below_unigram, paired_differences, seeds_for
from repro.context import RunContext

from .data import (
    GENRE_GROUPS,
    balanced_subset,
    encode_documents,
    genre_passages,
    load_corpus,
    pack_documents,
)
from .evaluate import GLUE_SETTINGS, evaluate_mlm, finetune, unigram_loss
from .model import MODEL_SIZES, model_config
from .recipes import RECIPES, parse_budget
from .train import TrainSettings, pretrain


def checkpoint_dir(cfg) -> Path:
    from repro.paths import cache_dir

    return (
        Path(cfg.checkpoint_dir).expanduser()
        if cfg.checkpoint_dir
        else cache_dir() / "cramming" / "checkpoints"
    )


def plot(runs: dict, finetuned: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(13, 3.6))
    colors = {"crammed": "tab:blue", "original": "tab:red"}
    for r in runs.values():
        h = r["history"]
        a.plot(
            [x["elapsed"] for x in h],
            [x["loss"] for x in h],
            color=colors[r["recipe"]],
            alpha=0.8,
            lw=1,
            label=f"{r['recipe']} (seed {r['seed']})",
        )
        if r["seed"] == min(x["seed"] for x in runs.values()):
            b.plot(
                [x["t"] for x in h],
                [x["lr"] / r["peak_lr"] for x in h],
                color=colors[r["recipe"]],
                label=f"{r['recipe']}: lr / peak",
            )
            full = max(x["batch"] for x in h)
            b.plot(
                [x["t"] for x in h],
                [x["batch"] / full for x in h],
                color=colors[r["recipe"]],
                ls=":",
                label=f"{r['recipe']}: batch / full",
            )
    a.set_xlabel("seconds of budget")
    a.set_ylabel("training MLM loss")
    a.set_title("pretraining at equal budget")
    a.legend(fontsize=7)
    b.set_xlabel("elapsed fraction of the budget t")
    b.set_title("schedules follow the budget")
    b.legend(fontsize=7)
    names = list(finetuned)
    vals = [finetuned[n] for n in names]
    for i, (n, v) in enumerate(zip(names, vals)):
        c.scatter([i] * len(v), v, color={**colors}.get(n, "tab:gray"), zorder=3)
        c.hlines(statistics.mean(v), i - 0.2, i + 0.2, color="k")
    c.axhline(1 / len(GENRE_GROUPS), color="k", ls=":", lw=1, label="chance")
    c.set_xticks(range(len(names)), names)
    c.set_xlim(-0.6, len(names) - 0.4)
    c.set_ylabel("balanced accuracy (held-out documents)")
    c.set_title("genre of a Brown passage")
    c.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def scaled_recipe(name: str, cfg):
    """The recipe with its peak learning rate times ``cfg.lr_scale`` (both recipes alike, so
    their ratio stays the paper's 10×)."""
    recipe = RECIPES[name]
    if cfg.lr_scale <= 0:
        raise ValueError(f"lr_scale={cfg.lr_scale}: must be positive (1.0: the paper's rates)")
    return dataclasses.replace(recipe, lr=recipe.lr * cfg.lr_scale)


def main(cfg, ctx: RunContext) -> None:
    budget_s = parse_budget(cfg.budget)
    seeds = seeds_for(ctx.seed, cfg.seeds)
    device = ctx.device
    corpus = load_corpus(cfg.corpus, vocab_size=cfg.vocab_size)
    enc_train = encode_documents(corpus.tokenizer, corpus.train_docs)
    enc_val = encode_documents(corpus.tokenizer, corpus.val_docs)
    train_seqs = pack_documents(enc_train, cfg.seq_len)
    val_seqs = pack_documents(enc_val, cfg.seq_len)[: cfg.eval_sequences]
    unigram = unigram_loss(train_seqs, val_seqs, corpus.vocab_size)
    if cfg.shards:
        # the scalable path: the training documents streamed into memory-mapped shards once
        # (reused while the tokenizer and documents are the same), windows drawn from the maps
        from .shards import ShardedTokens, prepare_shards

        folder = (
            checkpoint_dir(cfg).parent
            / "shards"
            / f"{cfg.corpus.replace('/', '_')}-v{corpus.vocab_size}"
        )
        man = prepare_shards(
            (d.text for d in corpus.train_docs),
            corpus.tokenizer,
            folder,
            source=f"{cfg.corpus}|{len(corpus.train_docs)}",
        )
        train_seqs = ShardedTokens(folder, cfg.seq_len)
        ctx.metrics["shards"] = {
            "folder": str(folder),
            "tokens": man["tokens"],
            "files": len(man["shards"]),
        }
    dims = dict(MODEL_SIZES[cfg.model], vocab_size=corpus.vocab_size, max_seq=cfg.seq_len)
    # (unigram, above: what token frequencies alone achieve on the held-out masked positions,
    # the line of the learned gates)
    ctx.metrics.update(
        seeds=seeds,
        corpus=cfg.corpus,
        train_documents=len(corpus.train_docs),
        heldout_documents=len(corpus.val_docs),
        vocab_size=corpus.vocab_size,
        train_sequences=len(train_seqs),
        eval_sequences=len(val_seqs),
        model_dims=dims,
        budget_s=budget_s,
        clock=cfg.clock,
        heldout_unigram_loss=unigram,
    )
    ckdir = checkpoint_dir(cfg)
    every_s = parse_budget(cfg.checkpoint_every) if cfg.checkpoint_every else 0.0
    runs: dict[str, dict] = {}
    encoders: dict[str, dict[int, dict]] = {"crammed": {}, "original": {}}
    losses: dict[str, list[float]] = {"crammed": [], "original": []}
    accuracies: dict[str, list[float]] = {"crammed": [], "original": []}
    at_paper_scale = cfg.model == "paper" and device.startswith("cuda")
    for seed in seeds:
        # one seed: the same batch order, training masks and held-out masks for both recipes
        # (the architectures differ, so their initial weights cannot be shared)
        for name in ("crammed", "original"):
            recipe = scaled_recipe(name, cfg)
            mcfg = model_config(
                cfg.model,
                **{**dims, **recipe.model_overrides()},
                attention=cfg.attention,
                init_std=cfg.init_std,
            )
            settings = TrainSettings(
                budget_s=budget_s,
                max_steps=cfg.max_steps,
                clock=cfg.clock,
                batch_size=cfg.batch_size,
                micro_batch=cfg.micro_batch,
                seed=seed,
                device=device,
                compile=cfg.compile,
                static_masks=cfg.static_masks,
                resume=cfg.resume,
                checkpoint_every_s=every_s,
                eval_data=val_seqs[: cfg.midrun_eval_sequences] if cfg.midrun_evals else None,
                eval_every=1 / (cfg.midrun_evals + 1) if cfg.midrun_evals else 0.0,
                show_progress=ctx.show_progress,
                log=ctx.log,
                checkpoint_path=(
                    ckdir / f"{cfg.model}-v{corpus.vocab_size}-{name}-seed{seed}.pt"
                    if cfg.checkpoint
                    else None
                ),
            )
            threads = torch.get_num_threads()
            if cfg.clock == "cpu" and device == "cpu" and cfg.cpu_clock_threads > 0:
                # the CPU clock sums every thread's time: a thread that adds CPU time but little
                # speed (small matrices) would shrink the budget's steps with the thread count
                torch.set_num_threads(cfg.cpu_clock_threads)
            try:
                res = pretrain(mcfg, recipe, train_seqs, settings, desc=f"{name} seed {seed}")
            finally:
                torch.set_num_threads(threads)
            loss, acc = evaluate_mlm(res.model, val_seqs, device=device)
            key = f"{name}_seed{seed}"
            runs[key] = {
                "recipe": name,
                "seed": seed,
                "history": res.history,
                "peak_lr": recipe.lr,
            }
            ctx.metrics.setdefault("pretraining", {})[key] = {
                "heldout_mlm_loss": loss,
                "heldout_mlm_accuracy": acc,
                "steps": res.steps,
                "tokens": res.tokens,
                "seconds": res.elapsed_s,
                "tokens_per_s": res.tokens_per_s,
                "epochs": res.sequences / len(train_seqs),
                "params": sum(p.numel() for p in res.model.parameters()),
                "midrun_evals": res.evals,
            }
            ctx.log(
                f"{key}: {res.steps} steps, {res.tokens_per_s:,.0f} tok/s, held-out loss {loss:.3f}, "
                f"accuracy {acc:.3f}"
            )
            encoders[name][seed] = {
                k: v.detach().cpu().clone() for k, v in res.model.encoder.state_dict().items()
            }
            del res
            losses[name].append(loss)
            accuracies[name].append(acc)
        # this seed's pair is complete: per-seed lists, paired by seed
        ctx.metrics.update(
            heldout_loss={n: list(v) for n, v in losses.items()},
            # top-1 accuracy on the masked held-out tokens, per seed (one token everywhere would
            # show as the same accuracy on every seed)
            heldout_accuracy={n: list(v) for n, v in accuracies.items()},
            crammed_below_unigram=below_unigram(losses["crammed"], unigram),
            original_below_unigram=below_unigram(losses["original"], unigram),
            mlm_loss_gap=paired_differences(losses["original"], losses["crammed"]),
        )
        if at_paper_scale:
            ctx.metrics["paper_scale_mlm_loss_gap"] = ctx.metrics["mlm_loss_gap"]

    pre = ctx.metrics["pretraining"]
    ctx.metrics.update(
        tokens_per_s_crammed=statistics.mean(
            pre[f"crammed_seed{s}"]["tokens_per_s"] for s in seeds
        ),
        tokens_per_s_original=statistics.mean(
            pre[f"original_seed{s}"]["tokens_per_s"] for s in seeds
        ),
    )
    if not at_paper_scale:
        ctx.skip("paper-scale-gpu", "measured only with --model=paper on a GPU (the full preset)")

    # ---- downstream: genre of held-out passages
    finetuned: dict[str, list[float]] = {}
    if cfg.corpus != "brown":
        for cid in ("pretraining-helps-downstream", "crammed-finetunes-better"):
            ctx.skip(cid, "the genre task needs the Brown corpus's labels")
    else:
        gx, gy = genre_passages(enc_train, corpus.train_docs, cfg.seq_len)
        hx, hy = genre_passages(enc_val, corpus.val_docs, cfg.seq_len)
        g = torch.Generator().manual_seed(0)
        train = balanced_subset(gx, gy, cfg.finetune_per_class, g)
        test = balanced_subset(hx, hy, cfg.finetune_test_per_class, g)
        ctx.metrics["downstream_data"] = {
            "classes": list(GENRE_GROUPS),
            "train_passages": len(train[0]),
            "test_passages": len(test[0]),
            "test_per_class": torch.bincount(test[1]).tolist(),
        }
        rows: dict[str, dict] = {}
        # three encoders per seed, fine-tuned with identical settings, data order and steps: the
        # crammed and the original checkpoints (each in its own architecture) and a randomly
        # initialised crammed architecture
        arms = (
            ("crammed", "crammed", lambda seed: encoders["crammed"][seed]),
            ("original", "original", lambda seed: encoders["original"][seed]),
            ("random init", "crammed", lambda seed: None),
        )
        for seed in seeds:
            fs = dataclasses.replace(
                GLUE_SETTINGS,
                epochs=cfg.finetune_epochs,
                batch=cfg.finetune_batch,
                lr=cfg.finetune_lr,
                pooler=cfg.finetune_pooler,
                seed=seed,
                device=device,
            )
            for arm, recipe_name, state in arms:
                mcfg = model_config(
                    cfg.model,
                    **{**dims, **RECIPES[recipe_name].model_overrides()},
                    init_std=cfg.init_std,
                )
                out = finetune(mcfg, state(seed), train, test, len(GENRE_GROUPS), fs)
                out.pop("predictions")
                rows[f"{arm} seed{seed}"] = out
                finetuned.setdefault(arm, []).append(out["balanced_accuracy"])
                ctx.log(
                    f"fine-tune {arm} seed {seed}: balanced accuracy {out['balanced_accuracy']:.3f}"
                )
            ctx.metrics["finetune"] = rows
            ctx.metrics.update(
                downstream_accuracy={k.replace(" ", "_"): list(v) for k, v in finetuned.items()},
                downstream_accuracy_gap=paired_differences(
                    finetuned["crammed"], finetuned["random init"]
                ),
                downstream_crammed_vs_original=paired_differences(
                    finetuned["crammed"], finetuned["original"]
                ),
            )

    # ---- throughput against Hugging Face BERT of the same size
    try:
        from .bench import measure

        tp = measure(
            {k: dims[k] for k in ("hidden", "layers", "heads", "ffn", "max_seq", "vocab_size")},
            data=train_seqs,
            micro_batch=cfg.micro_batch,
            steps=cfg.throughput_steps,
            rounds=cfg.throughput_rounds,
            device=device,
            include_original=False,
            include_hf_equal_flops=True,
        )
    except ImportError as e:
        ctx.skip("throughput-vs-hf-bert", f"transformers is not installed: {e}")
    else:
        ctx.metrics["throughput"] = tp
        if "HF BertForMaskedLM" in tp:
            ours = tp["ours (crammed)"]
            ctx.metrics["throughput_ratio_vs_hf_same_width"] = ours["ratio_vs_hf"]
            ctx.metrics["throughput_ratio_vs_hf"] = ours["ratio_vs_hf_equal_flops"]
        else:
            ctx.skip("throughput-vs-hf-bert", "transformers is not installed")

    if finetuned:
        plot(runs, finetuned, ctx.figure_path("cramming.png"))
