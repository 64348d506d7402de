"""Measurements for the Transformer-XL reproduction. See __init__.py for the claims."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from repro.common.data import lm_token_streams
from repro.common.stats import seeds_for, unigram_entropy
from repro.common.tinylm import cosine_lr
from repro.context import RunContext

from .model import TransformerXL, XLConfig


def streams(ids: torch.Tensor, n: int) -> torch.Tensor:
    """Cut one token stream into ``n`` contiguous streams read side by side, so each batch row
    continues where the same row of the previous batch stopped (what the memory needs)."""
    per = len(ids) // n
    return ids[: per * n].view(n, per)  # (n, per)


def train_model(cfg, ctx: RunContext, train_ids, mem_len: int, seed: int):
    torch.manual_seed(seed)
    model = TransformerXL(
        XLConfig(cfg.vocab_size, cfg.d_model, cfg.n_layer, cfg.n_head, 4 * cfg.d_model)
    )
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.1)
    data = streams(train_ids, cfg.batch_size)
    L = cfg.seg_len
    mems, losses = None, []
    for step in ctx.progress(range(cfg.steps), desc=f"train mem={mem_len}"):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, cfg.steps, cfg.lr, cfg.warmup)
        s = (step * L) % (data.shape[1] - L - 1)
        if s < L:  # wrapped around the streams: the old memory is not this text's past
            mems = None
        x, y = data[:, s : s + L], data[:, s + 1 : s + L + 1]
        logits, mems = model(x, mems, mem_len)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    return model, losses


@torch.no_grad()
def evaluate(model, val_ids, cfg, mem_len: int) -> tuple[float, list[float]]:
    """Mean loss over the same scored tokens for every memory length: segments are read in
    order with memory carried along; the first ``warmup_segments`` only fill the memory.
    Also returns the mean loss at each position inside a segment."""
    model.eval()
    data = streams(val_ids, cfg.eval_streams)
    L = cfg.seg_len
    mems, total, count = None, 0.0, 0
    by_pos = torch.zeros(L)
    for seg in range(cfg.eval_segments + cfg.warmup_segments):
        s = seg * L
        x, y = data[:, s : s + L], data[:, s + 1 : s + L + 1]
        logits, mems = model(x, mems, mem_len)
        if seg < cfg.warmup_segments:
            continue
        nll = F.cross_entropy(logits.transpose(1, 2), y, reduction="none")  # (B, L)
        total += nll.sum().item()
        count += nll.numel()
        by_pos += nll.mean(0)
    model.train()
    return total / count, (by_pos / cfg.eval_segments).tolist()


def plot(eval_mems, curve_xl, curve_plain, by_pos, seg_len, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    xs = [m / seg_len for m in eval_mems]
    a.plot(xs, curve_xl, "o-", label="trained with memory")
    a.plot(xs, curve_plain, "s--", label="trained without memory")
    a.set_xlabel(f"evaluation memory length (× segment length {seg_len})")
    a.set_ylabel("validation loss (nats/token)")
    a.set_title("longer memory, lower loss")
    a.legend()
    for m, curve in by_pos.items():
        b.plot(range(1, seg_len + 1), curve, label=f"memory {m}")
    b.set_xlabel("position inside the segment")
    b.set_ylabel("validation loss")
    b.set_title("model trained with memory")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run_seed(cfg, ctx: RunContext, train_ids, val_ids, mems: list[int], seed: int) -> dict:
    """Both models from one seed (same initialisation, same data order): their evaluation."""
    xl, loss_xl = train_model(cfg, ctx, train_ids, cfg.train_mem * cfg.seg_len, seed)
    plain, loss_plain = train_model(cfg, ctx, train_ids, 0, seed)
    curve_xl, curve_plain, by_pos = [], [], {}
    for m in ctx.progress(mems, desc=f"seed {seed}: eval memory"):
        loss, pos = evaluate(xl, val_ids, cfg, m)
        curve_xl.append(loss)
        by_pos[m] = pos
        curve_plain.append(evaluate(plain, val_ids, cfg, m)[0])
    return {
        "curve_xl": curve_xl,
        "curve_plain": curve_plain,
        "by_pos": by_pos,
        "train_xl": sum(loss_xl[-20:]) / 20,
        "train_plain": sum(loss_plain[-20:]) / 20,
    }


def scored_unigram(cfg, train_ids, val_ids) -> float:
    """Unigram cross-entropy (nats) on exactly the validation tokens that ``evaluate`` scores."""
    data = streams(val_ids, cfg.eval_streams)
    first = cfg.warmup_segments * cfg.seg_len + 1
    scored = data[:, first : first + cfg.eval_segments * cfg.seg_len]
    return unigram_entropy(train_ids, cfg.vocab_size, scored)


def main(cfg, ctx: RunContext) -> None:
    train_ids, val_ids, _ = lm_token_streams(vocab_size=cfg.vocab_size, kind="bpe")
    need = (cfg.eval_segments + cfg.warmup_segments) * cfg.seg_len + 1
    if len(val_ids) // cfg.eval_streams < need:
        raise ValueError(f"validation stream too short for {cfg.eval_streams} × {need} tokens")
    mems = [int(f * cfg.seg_len) for f in cfg.eval_mem_factors]
    if max(mems) > cfg.warmup_segments * cfg.seg_len:
        raise ValueError("warmup_segments must fill the longest evaluation memory")
    i0, iL = mems.index(0), mems.index(cfg.seg_len)
    unigram = scored_unigram(cfg, train_ids, val_ids)
    m = ctx.metrics
    m.update(eval_memory_lengths=mems, unigram_val_loss=unigram)
    # each extension of the memory must not raise the loss beyond evaluation-set noise
    tol = 0.002
    per: dict[str, list] = {}
    for seed in seeds_for(ctx.seed, cfg.seeds):
        r = run_seed(cfg, ctx, train_ids, val_ids, mems, seed)
        cx, cp, by_pos = r["curve_xl"], r["curve_plain"], r["by_pos"]
        monotone = all(b <= a + tol for a, b in zip(cx, cx[1:]))
        row = {
            "gain_memory_L_vs_0": cx[i0] - cx[iL],
            "gain_longest_vs_L": cx[iL] - cx[-1],
            "loss_non_increasing_in_memory": bool(monotone and cx[-1] < cx[i0]),
            # paired by seed: same initialisation and data order for both models
            "gain_over_vanilla": cp[i0] - cx[iL],
            # learned gates: each model in the setting it was trained for
            "xl_below_unigram": unigram - cx[iL],
            "vanilla_below_unigram": unigram - cp[i0],
            "train_loss_last20_with_memory": r["train_xl"],
            "train_loss_last20_without_memory": r["train_plain"],
            "first_vs_last_position_gap_no_memory": by_pos[0][0] - by_pos[0][-1],
            "first_vs_last_position_gap_memory_L": by_pos[cfg.seg_len][0] - by_pos[cfg.seg_len][-1],
        }
        for k, v in row.items():
            per.setdefault(k, []).append(v)
        for k, curve in (
            ("val_loss_trained_with_memory", cx),
            ("val_loss_trained_without_memory", cp),
        ):
            for mem, loss in zip(mems, curve):
                m.setdefault(k, {}).setdefault(str(mem), []).append(loss)
        m.update({k: list(v) for k, v in per.items()})  # kept as the seeds finish
        if seed == ctx.seed:
            plot(mems, cx, cp, by_pos, cfg.seg_len, ctx.figure_path("memory.png"))
