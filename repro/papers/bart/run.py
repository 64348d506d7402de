"""Measurements for BART. See __init__.py for the claims."""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F

from repro.common.data import lm_token_streams
from repro.common.stats import paired_ratios, seeds_for, unigram_entropy
from repro.context import RunContext

from .model import Bart, BartConfig
from .noising import infilling_statistics, noise


class Vocab:
    """The special ids and sentence-final tokens the noising and batching need."""

    def __init__(self, tok):
        self.tok = tok
        self.pad = tok.token_to_id("[PAD]")
        self.mask = tok.token_to_id("[MASK]")
        self.bos = tok.token_to_id("[CLS]")
        self.size = tok.get_vocab_size()
        self.sentence_ends = {
            i
            for i in range(self.size)
            if tok.decode([i]).rstrip().endswith((".", "?", "!"))
            and tok.id_to_token(i) not in {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[EOS]"}
        }


def windows(ids: torch.Tensor, count: int, length: int, gen: torch.Generator) -> torch.Tensor:
    """``count`` random windows (count, length) of a token stream."""
    starts = torch.randint(0, len(ids) - length, (count,), generator=gen)
    return ids[starts[:, None] + torch.arange(length)]


def denoising_batch(x: torch.Tensor, kind: str, cfg, vocab: Vocab, gen: torch.Generator):
    """Noise each window; return (src, dec_in, labels, hidden).

    src (B, S_max) padded with [PAD]; dec_in = [BOS] + x[:, :-1]; labels = x (B, n); hidden
    (B, n) marks the original tokens the source does not show.
    """
    noised = [
        noise(
            kind,
            row,
            mask_id=vocab.mask,
            ratio=cfg.mask_ratio,
            lam=cfg.poisson_lambda,
            sentence_ends=vocab.sentence_ends,
            gen=gen,
        )
        for row in x
    ]
    S = max(len(z.source) for z in noised)
    src = torch.full((len(x), S), vocab.pad, dtype=torch.long)
    for i, z in enumerate(noised):
        src[i, : len(z.source)] = z.source
    dec_in = torch.cat([torch.full((len(x), 1), vocab.bos), x[:, :-1]], dim=1)
    return src, dec_in, x, torch.stack([z.hidden for z in noised])


def continuation_batch(x: torch.Tensor, src_len: int, vocab: Vocab):
    """Downstream proxy: the encoder reads src_len tokens, the decoder writes the rest."""
    src, tgt = x[:, :src_len], x[:, src_len:]
    dec_in = torch.cat([torch.full((len(x), 1), vocab.bos), tgt[:, :-1]], dim=1)
    return src, dec_in, tgt


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up, then linear decay to 0 (the fairseq polynomial schedule with power 1)."""
    if step <= warmup:
        return peak * step / warmup
    return peak * max(0.0, (total - step) / max(1, total - warmup))


def train(
    model, make_batch, steps: int, cfg, ctx: RunContext, desc: str, warmup: int | None = None
) -> list[float]:
    """AdamW on cross-entropy over the target tokens; returns the loss per step."""
    warmup = cfg.warmup if warmup is None else warmup
    opt = torch.optim.AdamW(
        model.parameters(),
        lr=cfg.lr,
        betas=(0.9, 0.98),
        eps=1e-6,
        weight_decay=0.01,
        foreach=True,
    )
    losses = []
    model.train()
    for step in ctx.progress(range(1, steps + 1), desc=desc):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, cfg.lr, warmup)
        src, dec_in, labels = make_batch()[:3]
        logits = model(src, dec_in)
        loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def reconstruction_eval(model, batches) -> dict:
    """Teacher-forced loss and accuracy over all target tokens, the hidden ones and the
    visible ones, on held-out windows."""
    model.eval()
    tot = {"nll": 0.0, "n": 0, "h_nll": 0.0, "h_n": 0, "h_ok": 0, "v_ok": 0, "v_n": 0}
    for src, dec_in, labels, hidden in batches:
        logits = model(src, dec_in)
        nll = F.cross_entropy(logits.transpose(1, 2), labels, reduction="none")  # (B, n)
        ok = logits.argmax(-1) == labels
        tot["nll"] += nll.sum().item()
        tot["n"] += labels.numel()
        tot["h_nll"] += nll[hidden].sum().item()
        tot["h_n"] += int(hidden.sum())
        tot["h_ok"] += int(ok[hidden].sum())
        tot["v_ok"] += int(ok[~hidden].sum())
        tot["v_n"] += int((~hidden).sum())
    return {
        "loss": tot["nll"] / tot["n"],
        "hidden_loss": tot["h_nll"] / max(1, tot["h_n"]),
        "hidden_accuracy": tot["h_ok"] / max(1, tot["h_n"]),
        "visible_accuracy": tot["v_ok"] / max(1, tot["v_n"]),
    }


@torch.no_grad()
def continuation_loss(model, batches) -> float:
    model.eval()
    nll = n = 0.0
    for src, dec_in, tgt in batches:
        logits = model(src, dec_in)
        nll += F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), reduction="sum").item()
        n += tgt.numel()
    return nll / n


def unigram_baselines(train_ids: torch.Tensor, eval_batches, vocab_size: int) -> dict:
    """What a model gets without reading the context of a hidden token.

    unigram_entropy  H = −Σ_w p(w) log p(w) of the training tokens (add-one smoothed)
    copy_oracle_loss per target token, for a model that copies every visible token with
                     certainty, is told where the spans are and how long, and predicts each
                     hidden token from p(w): Σ_hidden −log p(x) / (target tokens)
    mode_accuracy    share of hidden tokens equal to the most frequent training token
    """
    counts = torch.bincount(train_ids, minlength=vocab_size).double() + 1
    p = counts / counts.sum()
    logp = p.log()
    nll = hits = hidden_n = total = 0
    mode = int(p.argmax())
    for _, _, labels, hidden in eval_batches:
        nll += -logp[labels[hidden]].sum().item()
        hits += int((labels[hidden] == mode).sum())
        hidden_n += int(hidden.sum())
        total += labels.numel()
    return {
        "unigram_entropy": -(p * logp).sum().item(),
        "copy_oracle_loss": nll / total,
        "unigram_hidden_loss": nll / hidden_n,
        "mode_accuracy": hits / hidden_n,
    }


def make_model(cfg, vocab: Vocab, seed: int) -> Bart:
    torch.manual_seed(seed)
    return Bart(
        BartConfig(
            vocab_size=vocab.size,
            max_len=2 * cfg.seq_len,
            d_model=cfg.d_model,
            n_head=cfg.n_head,
            n_layer=cfg.n_layer,
            d_ff=cfg.d_ff,
            pad_id=vocab.pad,
            pre_ln=cfg.pre_ln,
        )
    )


def example(model, val_ids, cfg, vocab: Vocab, seed: int) -> dict:
    """One held-out window, its infilled source and the greedy reconstruction, as text."""
    gen = torch.Generator().manual_seed(seed)
    x = windows(val_ids, 1, cfg.example_len, gen)
    src, _, _, hidden = denoising_batch(x, "infilling", cfg, vocab, gen)
    out = model.generate(src, vocab.bos, x.shape[1])
    dec = vocab.tok.decode
    return {
        "original": dec(x[0].tolist(), skip_special_tokens=False),
        "corrupted": dec(src[0].tolist(), skip_special_tokens=False),
        "reconstruction": dec(out[0].tolist(), skip_special_tokens=False),
        "hidden_tokens": int(hidden.sum()),
        "masks": int((src == vocab.mask).sum()),
        "tokens_right": int((out[0] == x[0]).sum()),
        "tokens": x.shape[1],
    }


def plot(curves: dict, ft_curves: dict, ex: dict, path) -> None:
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def smooth(v, w=20):
        t = torch.tensor(v)
        w = min(w, len(v))
        return (t.unfold(0, w, 1).mean(-1)).tolist(), w

    fig = plt.figure(figsize=(11, 7.5))
    a = fig.add_subplot(2, 2, 1)
    for k, v in curves.items():
        s, w = smooth(v)
        a.plot(range(w, len(v) + 1), s, label=k)
    a.set_xlabel("step")
    a.set_ylabel("training loss (nats / target token)")
    a.set_title("pretraining: reconstruct the original")
    a.legend()
    b = fig.add_subplot(2, 2, 2)
    for k, v in ft_curves.items():
        s, w = smooth(v)
        b.plot(range(w, len(v) + 1), s, label=k)
    b.set_xlabel("step")
    b.set_ylabel("training loss (nats / target token)")
    b.set_title("downstream proxy: continue the text")
    if ft_curves:
        b.legend()
    else:
        b.text(0.5, 0.5, "not run in this preset", ha="center", transform=b.transAxes)
    c = fig.add_subplot(2, 1, 2)
    c.axis("off")
    body = []
    for key in ("original", "corrupted", "reconstruction"):
        body.append(f"{key}:")
        body += textwrap.wrap(ex[key].replace("\n", " ⏎ "), 120)
        body.append("")
    c.text(0, 1, "\n".join(body), va="top", family="monospace", fontsize=7.5)
    c.set_title(
        f"held-out example: {ex['hidden_tokens']} tokens hidden under {ex['masks']} masks; "
        f"greedy reconstruction gets {ex['tokens_right']}/{ex['tokens']} tokens right",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(cfg, ctx: RunContext) -> None:
    # Claim 1: the noising function against its specification
    stats = infilling_statistics(
        cfg.noise_windows,
        cfg.noise_len,
        cfg.mask_ratio,
        cfg.poisson_lambda,
        torch.Generator().manual_seed(ctx.seed),
    )
    ctx.metrics.update(stats)

    train_ids, val_ids, tok = lm_token_streams(
        vocab_size=cfg.vocab_size, kind="bpe", max_docs=cfg.max_docs or None
    )
    vocab = Vocab(tok)
    ctx.metrics.update(train_tokens=len(train_ids), val_tokens=len(val_ids))

    def denoise_eval_batches(kind: str):
        gen = torch.Generator().manual_seed(10_000 + ctx.seed)
        x = windows(val_ids, cfg.eval_windows, cfg.seq_len, gen)
        return [denoising_batch(c, kind, cfg, vocab, gen) for c in x.split(cfg.batch)]

    gen = torch.Generator().manual_seed(20_000 + ctx.seed)
    x = windows(val_ids, cfg.eval_windows, cfg.src_len + cfg.tgt_len, gen)
    cont_eval = [continuation_batch(c, cfg.src_len, vocab) for c in x.split(cfg.batch)]

    # What needs no context, for the reconstruction findings; the unigram floor of the
    # continuation targets, for the learned gates of the downstream comparison
    base = unigram_baselines(train_ids, denoise_eval_batches("infilling"), vocab.size)
    ctx.metrics.update(base)
    # the unigram cross-entropy of the reconstruction targets (the same held-out windows for
    # every objective): the floor of each denoiser's learned gate
    recon_targets = torch.cat([b[2].reshape(-1) for b in denoise_eval_batches("infilling")])
    recon_unigram = unigram_entropy(train_ids, vocab.size, recon_targets)
    ctx.metrics["reconstruction_unigram_nats"] = recon_unigram
    cont_targets = torch.cat([tgt.reshape(-1) for _, _, tgt in cont_eval])
    cont_unigram = unigram_entropy(train_ids, vocab.size, cont_targets)
    ctx.metrics["continuation_unigram_nats"] = cont_unigram
    compare = cfg.finetune_steps and "infilling" in cfg.objectives and "masking" in cfg.objectives
    if not compare:
        ctx.skip(
            "infilling-beats-masking",
            "this configuration pretrains no token-masking model or fine-tunes nothing",
        )

    curves, ft_curves, results = {}, {}, {}
    for seed_i, seed in enumerate(seeds_for(ctx.seed, cfg.seeds)):
        for kind in cfg.objectives:
            model = make_model(cfg, vocab, seed)  # same initial weights for every objective
            gen = torch.Generator().manual_seed(1000 + seed)  # same windows for every objective

            def pretrain_batch(kind=kind, gen=gen):
                return denoising_batch(
                    windows(train_ids, cfg.batch, cfg.seq_len, gen), kind, cfg, vocab, gen
                )

            losses = train(model, pretrain_batch, cfg.steps, cfg, ctx, f"pretrain {kind}")
            r = {"final_train_loss": sum(losses[-20:]) / len(losses[-20:])}
            r.update(reconstruction_eval(model, denoise_eval_batches(kind)))
            if seed_i == 0:
                curves[kind] = losses
                if kind == "infilling":
                    ex = example(model, val_ids, cfg, vocab, 30_000 + ctx.seed)
                    ctx.metrics["example"] = ex
            results.setdefault(kind, []).append(r)
            # learned gate of each pretrained arm: its held-out reconstruction loss (all
            # target tokens) below the unigram floor; and whether it reads its source at all
            ctx.metrics.setdefault(f"{kind}_denoiser_below_unigram", []).append(
                recon_unigram - r["loss"]
            )
            ctx.metrics.setdefault(f"{kind}_visible_accuracy", []).append(r["visible_accuracy"])
            ctx.metrics.setdefault("objectives", {})[kind] = results[kind]
            if not cfg.finetune_steps:
                continue
            # downstream proxy: fine-tune a copy on continuation, same batches for each
            ft = copy.deepcopy(model)
            gen_ft = torch.Generator().manual_seed(2000 + seed)

            def cont_batch(gen=gen_ft):
                x = windows(train_ids, cfg.batch, cfg.src_len + cfg.tgt_len, gen)
                return continuation_batch(x, cfg.src_len, vocab)

            ft_losses = train(
                ft,
                cont_batch,
                cfg.finetune_steps,
                cfg,
                ctx,
                f"fine-tune {kind}",
                cfg.finetune_warmup,
            )
            r["continuation_loss"] = continuation_loss(ft, cont_eval)
            ctx.metrics.setdefault(f"{kind}_finetuned_below_unigram", []).append(
                cont_unigram - r["continuation_loss"]
            )
            if seed_i == 0:
                ft_curves[kind] = ft_losses
        if cfg.scratch_baseline and cfg.finetune_steps:
            model = make_model(cfg, vocab, seed)
            gen_ft = torch.Generator().manual_seed(2000 + seed)

            def cont_batch(gen=gen_ft):
                x = windows(train_ids, cfg.batch, cfg.src_len + cfg.tgt_len, gen)
                return continuation_batch(x, cfg.src_len, vocab)

            ft_losses = train(
                model, cont_batch, cfg.finetune_steps, cfg, ctx, "from scratch", cfg.finetune_warmup
            )
            r = {"continuation_loss": continuation_loss(model, cont_eval)}
            if seed_i == 0:
                ft_curves["no pretraining"] = ft_losses
            results.setdefault("none", []).append(r)
            ctx.metrics.setdefault("objectives", {})["none"] = results["none"]
            # the downstream task must see pretraining: the gain of the weaker pretrained arm
            # over fine-tuning the same initial weights with no pretraining (nats per token)
            worst = max(results[k][-1]["continuation_loss"] for k in cfg.objectives)
            ctx.metrics.setdefault("pretraining_gain", []).append(r["continuation_loss"] - worst)

        # the infilling model against what needs no context: one value per seed so far
        inf = results["infilling"]
        ctx.metrics.update(
            recon_loss=[r["loss"] for r in inf],
            recon_hidden_loss=[r["hidden_loss"] for r in inf],
            recon_hidden_accuracy=[r["hidden_accuracy"] for r in inf],
            recon_visible_accuracy=[r["visible_accuracy"] for r in inf],
            recon_loss_over_entropy=[r["loss"] / base["unigram_entropy"] for r in inf],
            recon_loss_over_copy_oracle=[r["loss"] / base["copy_oracle_loss"] for r in inf],
            hidden_accuracy_over_mode=[r["hidden_accuracy"] / base["mode_accuracy"] for r in inf],
            # the learned gate of the reconstruction finding: on the hidden tokens, where
            # only context helps, the denoiser must beat the unigram model by a margin
            hidden_below_unigram=[base["unigram_hidden_loss"] - r["hidden_loss"] for r in inf],
        )
        if cfg.finetune_steps:
            ctx.metrics["continuation_perplexity"] = {
                k: [math.exp(r["continuation_loss"]) for r in v] for k, v in results.items()
            }
        if compare:
            # downstream perplexity after infilling vs token-masking pretraining, per seed
            ppl = ctx.metrics["continuation_perplexity"]
            ctx.metrics["ppl_ratio_infilling_over_masking"] = paired_ratios(
                ppl["infilling"], ppl["masking"]
            )
    plot(curves, ft_curves, ctx.metrics["example"], ctx.figure_path("bart.png"))
