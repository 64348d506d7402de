"""Reward model from preference pairs, then policy optimisation against it with and without
the KL penalty, once per seed, each policy scored along the way by the gold rule. See
__init__.py."""

from __future__ import annotations

import copy
import statistics
from dataclasses import dataclass

import torch

from repro.common.data import lm_token_streams, random_windows
from repro.common.stats import seeds_for, unigram_entropy
from repro.common.tinylm import LMConfig, TinyLM, cosine_lr, evaluate
from repro.context import RunContext

from .rlhf import (
    RewardModel,
    bradley_terry_loss,
    gold_score,
    policy_step,
    sample,
    sequence_logprob,
)

EVAL_BATCH, EVAL_BATCHES = 16, 20  # the reference LM's held-out loss: 320 windows


# --------------------------------------------------------------------------- preference data
def preference_pairs(ids: torch.Tensor, n: int, prompt_len: int, resp_len: int, gen):
    """(prompt + chosen, prompt + rejected, kind) from real text.

    The chosen response is always the text that really follows the prompt. The rejected one
    is, for even i, the same tokens in a random order (kind 0: only word order separates the
    two) and, for odd i, a real passage from a random other place in the corpus (kind 1: both
    are fluent; only the fit to the prompt separates them). The rule needs no judgement and
    every label is right."""
    L = prompt_len + resp_len
    starts = torch.randint(0, len(ids) - L, (n,), generator=gen)
    win = ids[starts[:, None] + torch.arange(L)]  # (n, L)
    chosen, rejected = win.clone(), win.clone()
    kind = torch.arange(n) % 2
    others = torch.randint(0, len(ids) - resp_len, (n,), generator=gen)
    for i in range(n):
        if kind[i] == 0:
            perm = torch.randperm(resp_len, generator=gen)
            while torch.equal(perm, torch.arange(resp_len)):
                perm = torch.randperm(resp_len, generator=gen)
            rejected[i, prompt_len:] = win[i, prompt_len:][perm]
        else:
            rejected[i, prompt_len:] = ids[others[i] : others[i] + resp_len]
    return chosen, rejected, kind


# --------------------------------------------------------------------------- stages
def pretrain(cfg, train_ids, seed: int) -> TinyLM:
    """The stand-in for the supervised policy: a small GPT trained on Brown text (the
    project's recipe: AdamW β = (0.9, 0.95), no weight decay, cosine with 5% warm-up)."""
    torch.manual_seed(seed)
    lm = TinyLM(LMConfig.like(cfg))
    opt = torch.optim.AdamW(
        lm.parameters(), lr=cfg.lm_lr, betas=(0.9, 0.95), weight_decay=0.0, foreach=True
    )
    gen = torch.Generator().manual_seed(seed)
    batches = random_windows(train_ids, cfg.lm_batch, cfg.seq_len, gen)
    warm = max(1, cfg.pretrain_steps // 20)
    lm.train()
    for step in range(cfg.pretrain_steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, cfg.pretrain_steps, cfg.lm_lr, warm)
        x, y = next(batches)
        _, loss = lm(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lm.parameters(), 1.0)
        opt.step()
    lm.eval()
    return lm


def train_reward_model(lm: TinyLM, cfg, train_ids, seed: int) -> tuple[RewardModel, list]:
    rm = RewardModel(copy.deepcopy(lm), cfg.prompt_len)
    opt = torch.optim.AdamW(rm.parameters(), lr=cfg.rm_lr, foreach=True)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    rm.train()
    for step in range(cfg.rm_steps):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, cfg.rm_steps, cfg.rm_lr, max(1, cfg.rm_steps // 20))
        chosen, rejected, _ = preference_pairs(
            train_ids, cfg.rm_batch, cfg.prompt_len, cfg.response_len, gen
        )
        # one forward over both halves: (2B, L) → split the scores
        scores = rm(torch.cat([chosen, rejected]))
        loss = bradley_terry_loss(*scores.chunk(2))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(rm.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    rm.eval()
    for p in rm.parameters():
        p.requires_grad_(False)
    return rm, losses


@torch.no_grad()
def pairwise_accuracy(score, ids, cfg, n: int, seed: int) -> dict:
    """Share of held-out pairs that ``score(chosen, rejected) -> (s_w, s_l)`` orders right,
    overall and by kind."""
    chosen, rejected, kind = preference_pairs(
        ids, n, cfg.prompt_len, cfg.response_len, torch.Generator().manual_seed(seed)
    )
    s_w, s_l = score(chosen, rejected)
    right = (s_w > s_l).float()
    return {
        "all": right.mean().item(),
        "shuffled": right[kind == 0].mean().item(),
        "elsewhere": right[kind == 1].mean().item(),
    }


def rm_pair_scores(rm: RewardModel):
    return lambda chosen, rejected: (rm(chosen), rm(rejected))


def gold_pair_scores(prompt_len: int):
    """The gold rule on a labelled pair: both responses scored against the real continuation
    (which is the chosen one)."""

    def score(chosen, rejected):
        truth = chosen[:, prompt_len:]
        return gold_score(truth, truth), gold_score(rejected[:, prompt_len:], truth)

    return score


@torch.no_grad()
def normalise(rm: RewardModel, lm: TinyLM, ids, cfg, seed: int) -> None:
    """Shift and scale the reward so the reference policy's own samples score mean 0 and
    standard deviation 1. The paper shifts its reward model so that labeller demonstrations
    score 0 on average; the scale is our addition, so that β has the same meaning (nats of
    KL per standard deviation of reward) whatever scale the Bradley–Terry training reached."""
    gen = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(ids) - cfg.prompt_len, (256,), generator=gen)
    prompts = ids[starts[:, None] + torch.arange(cfg.prompt_len)]
    r = rm(sample(lm, prompts, cfg.response_len, gen))
    rm.b -= r.mean()
    rm.a /= r.std()
    rm.b /= r.std()


@dataclass(frozen=True)
class EvalSet:
    """Held-out prompts with their real continuations, and a fixed sampling seed: every
    checkpoint samples with the same noise, so differences between checkpoints are the
    policy's, not the dice's."""

    prompts: torch.Tensor  # (n, prompt_len)
    truths: torch.Tensor  # (n, response_len)
    noise_seed: int


def eval_set(ids, cfg, seed: int) -> EvalSet:
    gen = torch.Generator().manual_seed(seed)
    L = cfg.prompt_len + cfg.response_len
    starts = torch.randint(0, len(ids) - L, (cfg.eval_prompts,), generator=gen)
    win = ids[starts[:, None] + torch.arange(L)]
    return EvalSet(win[:, : cfg.prompt_len], win[:, cfg.prompt_len :], seed + 1)


@torch.no_grad()
def score_policy(policy: TinyLM, ref: TinyLM, rm: RewardModel, es: EvalSet) -> dict:
    """Mean gold score, mean proxy (reward-model) score and KL(π‖π_ref) estimate of the
    policy's samples on one evaluation set."""
    P = es.prompts.shape[1]
    seq = sample(
        policy, es.prompts, es.truths.shape[1], torch.Generator().manual_seed(es.noise_seed)
    )
    log_ratio = sequence_logprob(policy, seq, P) - sequence_logprob(ref, seq, P)
    return {
        "gold": gold_score(seq[:, P:], es.truths).mean().item(),
        "proxy": rm(seq).mean().item(),
        "kl": log_ratio.mean().item(),
    }


def optimise_policy(
    lm, rm, cfg, prompt_ids, beta: float, seed: int, sets: dict[str, EvalSet], progress
) -> list[dict]:
    """REINFORCE on eq. 2 for ``cfg.rl_steps`` steps; every ``cfg.eval_every`` steps (and at
    step 0 and the last step) the policy is scored on each evaluation set. Returns one row per
    checkpoint: {"step", "gold_A", "proxy_A", "kl_A", "gold_B", ...}."""
    policy, ref = copy.deepcopy(lm), copy.deepcopy(lm)
    for p in ref.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(policy.parameters(), lr=cfg.rl_lr, foreach=True)
    gen = torch.Generator().manual_seed(seed)  # same prompts and sampling noise for each β
    checkpoints = []

    def checkpoint(step: int) -> None:
        policy.eval()
        row: dict = {"step": step}
        for name, es in sets.items():
            for key, value in score_policy(policy, ref, rm, es).items():
                row[f"{key}_{name}"] = value
        checkpoints.append(row)

    for step in progress(range(cfg.rl_steps), desc=f"policy β={beta:g}"):
        if step % cfg.eval_every == 0:
            checkpoint(step)
        starts = torch.randint(0, len(prompt_ids) - cfg.prompt_len, (cfg.rl_batch,), generator=gen)
        prompts = prompt_ids[starts[:, None] + torch.arange(cfg.prompt_len)]
        policy_step(policy, ref, rm, opt, prompts, cfg.response_len, beta, gen)
    checkpoint(cfg.rl_steps)
    return checkpoints


def over_optimisation(curve: list[dict]) -> dict:
    """The statistics of one run's gold curve, defined before any run:

    * the peak: the checkpoint where the gold score on set A is highest (the first, on ties);
    * every value at the start, the peak and the end is then read off set B, whose prompts and
      samples are independent of A, so noise that put the peak where it is does not also
      inflate the rise or the fall measured there;
    * rise = gold_B(peak) − gold_B(start), fall = gold_B(peak) − gold_B(end), both divided by
      gold_B(start) (the reference policy's gold score);
    * proxy_after_peak = proxy_B(end) − proxy_B(peak), in standard deviations of the reference
      policy's reward (the reward model is normalised to that scale)."""
    i = max(range(len(curve)), key=lambda j: (curve[j]["gold_A"], -j))
    start, peak, end = curve[0], curve[i], curve[-1]
    g0 = start["gold_B"]
    return {
        "peak_step": peak["step"],
        "rise": (peak["gold_B"] - g0) / g0,
        "fall": (peak["gold_B"] - end["gold_B"]) / g0,
        "proxy_after_peak": end["proxy_B"] - peak["proxy_B"],
        "kl_at_peak": peak["kl_B"],
        "kl_end": end["kl_B"],
        "gold_end": end["gold_B"] / g0,
        "proxy_end": end["proxy_B"],
    }


# --------------------------------------------------------------------------- figure
def plot(runs: dict[str, list[dict]], rm_losses, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(12, 3.4))
    a.plot(rm_losses, lw=0.8)
    a.set_xlabel("reward-model step")
    a.set_ylabel("Bradley–Terry loss")
    a.set_title("reward model")
    for name, curve in runs.items():
        kl = [r["kl_B"] for r in curve]
        b.plot(kl, [r["gold_B"] for r in curve], marker=".", lw=1, label=name)
        c.plot(kl, [r["proxy_B"] for r in curve], marker=".", lw=1, label=name)
    b.set_xlabel("KL(π ‖ π_ref) (nats)")
    b.set_ylabel("gold score (overlap with the real text)")
    b.set_title("gold reward")
    c.set_xlabel("KL(π ‖ π_ref) (nats)")
    c.set_ylabel("reward-model score (reference sd)")
    c.set_title("proxy reward")
    b.legend(fontsize=8)
    c.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run_seed(cfg, seed: int, train_ids, val_ids, unigram: float, progress) -> tuple[dict, dict]:
    """Steps 2 and 3 for one seed: (scalar metrics, per-checkpoint curves and RM losses)."""
    lm = pretrain(cfg, train_ids, seed)
    ref_val = evaluate(lm, val_ids, cfg.seq_len, EVAL_BATCH, EVAL_BATCHES)
    rm, rm_losses = train_reward_model(lm, cfg, train_ids, seed + 1)
    acc = pairwise_accuracy(rm_pair_scores(rm), val_ids, cfg, cfg.eval_pairs, seed + 2)
    normalise(rm, lm, train_ids, cfg, seed + 4)
    # two independent evaluation sets of held-out prompts: A picks the gold peak, B measures
    sets = {
        "A": eval_set(val_ids, cfg, 1000 + 10 * seed),
        "B": eval_set(val_ids, cfg, 2000 + 10 * seed),
    }
    runs = {}
    for beta in (0.0, cfg.beta):  # paired: same prompts and sampling noise for both β
        runs[f"β = {beta:g}"] = optimise_policy(
            lm, rm, cfg, train_ids, beta, seed + 3, sets, progress
        )
    free = over_optimisation(runs["β = 0"])
    pen = over_optimisation(runs[f"β = {cfg.beta:g}"])
    m = {
        "reference_val_loss": ref_val,
        "reference_below_unigram": unigram - ref_val,
        "rm_final_loss": statistics.fmean(rm_losses[-20:]),
        "rm_heldout_accuracy": acc["all"],
        "rm_heldout_accuracy_shuffled": acc["shuffled"],
        "rm_heldout_accuracy_elsewhere": acc["elsewhere"],
        "gold_start": runs["β = 0"][0]["gold_B"],
        "reward_gain_penalised": pen["proxy_end"],  # the start is 0 by the normalisation
    }
    for arm, stats in (("unpenalised", free), ("penalised", pen)):
        for key, value in stats.items():
            m[f"gold_{key}_{arm}" if key in ("peak_step", "rise", "fall") else f"{key}_{arm}"] = (
                value
            )
    # the penalty's effect on the gold reward, paired by seed (same prompts, same noise)
    m["penalty_gold_kept"] = pen["gold_end"] - free["gold_end"]
    m["penalty_peak_delay"] = pen["peak_step"] - free["peak_step"]
    return m, {"runs": runs, "rm_losses": rm_losses}


def main(cfg, ctx: RunContext) -> None:
    train_ids, val_ids, _ = lm_token_streams(vocab_size=cfg.vocab_size)
    # The learned gate's floor for the reference policy: unigram cross-entropy on the
    # tokens evaluate() scores.
    span = val_ids[: EVAL_BATCHES * EVAL_BATCH * cfg.seq_len + 1]
    unigram = unigram_entropy(train_ids, cfg.vocab_size, span[1:])
    ctx.metrics["unigram_nats"] = unigram
    # the check that the gold rule is the labelling rule: it orders held-out pairs as labelled
    gold = pairwise_accuracy(
        gold_pair_scores(cfg.prompt_len), val_ids, cfg, cfg.eval_pairs, ctx.seed + 99
    )
    ctx.metrics["gold_pair_accuracy"] = gold["all"]
    first = None
    for seed in ctx.progress(seeds_for(ctx.seed, cfg.seeds), desc="seeds"):
        m, extra = run_seed(cfg, seed, train_ids, val_ids, unigram, ctx.progress)
        for key, value in m.items():  # one value per seed under every key
            ctx.metrics.setdefault(key, []).append(value)
        if first is None:
            first = extra
            ctx.metrics["history"] = extra["runs"]  # per-checkpoint curves of the first seed
        ctx.log(
            f"  seed {seed}: RM accuracy {m['rm_heldout_accuracy']:.3f}; β = 0: gold rise "
            f"{m['gold_rise_unpenalised']:+.2f}, fall {m['gold_fall_unpenalised']:+.2f} "
            f"(peak at step {m['gold_peak_step_unpenalised']}); penalty keeps "
            f"{m['penalty_gold_kept']:+.2f}"
        )
    plot(first["runs"], first["rm_losses"], ctx.figure_path("rlhf.png"))
