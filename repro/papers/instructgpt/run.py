"""Reward model from preference pairs, then KL-penalised policy optimisation, once per seed.
See __init__.py."""

from __future__ import annotations

import copy
import statistics

import torch

from repro.common.data import lm_token_streams, random_windows
from repro.common.stats import seeds_for, unigram_entropy
from repro.common.tinylm import LMConfig, TinyLM, cosine_lr, evaluate
from repro.context import RunContext

from .rlhf import RewardModel, bradley_terry_loss, policy_step, sample

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
    """The stand-in for the supervised policy: a small GPT trained on Brown text."""
    torch.manual_seed(seed)
    lm = TinyLM(
        LMConfig.like(
            cfg,
        )
    )
    opt = torch.optim.AdamW(lm.parameters(), lr=cfg.lm_lr, betas=(0.9, 0.95), foreach=True)
    batches = random_windows(train_ids, 8, cfg.seq_len, torch.Generator().manual_seed(seed))
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
def pairwise_accuracy(rm: RewardModel, ids, cfg, n: int, seed: int) -> dict:
    """Share of held-out pairs the reward model orders right, overall and by kind."""
    chosen, rejected, kind = preference_pairs(
        ids, n, cfg.prompt_len, cfg.response_len, torch.Generator().manual_seed(seed)
    )
    right = (rm(chosen) > rm(rejected)).float()
    return {
        "all": right.mean().item(),
        "shuffled": right[kind == 0].mean().item(),
        "elsewhere": right[kind == 1].mean().item(),
    }


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


def optimise_policy(lm, rm, cfg, prompt_ids, beta: float, seed: int, progress) -> list[dict]:
    policy, ref = copy.deepcopy(lm), copy.deepcopy(lm)
    for p in ref.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(policy.parameters(), lr=cfg.rl_lr, foreach=True)
    gen = torch.Generator().manual_seed(seed)  # same prompts and sampling noise for each β
    history = []
    for _ in progress(range(cfg.rl_steps), desc=f"policy β={beta:g}"):
        starts = torch.randint(0, len(prompt_ids) - cfg.prompt_len, (cfg.rl_batch,), generator=gen)
        prompts = prompt_ids[starts[:, None] + torch.arange(cfg.prompt_len)]
        history.append(policy_step(policy, ref, rm, opt, prompts, cfg.response_len, beta, gen))
    return history


def window_mean(history: list[dict], key: str, first: bool, k: int) -> float:
    part = history[:k] if first else history[-k:]
    return statistics.fmean(h[key] for h in part)


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
    for name, hist in runs.items():
        b.plot([h["reward"] for h in hist], lw=1, label=name)
        c.plot([h["kl"] for h in hist], lw=1, label=name)
    b.set_xlabel("policy step")
    b.set_ylabel("mean reward r_θ")
    b.set_title("reward")
    c.set_xlabel("policy step")
    c.set_ylabel("KL(π ‖ π_ref) estimate (nats)")
    c.set_title("distance from the reference")
    b.legend(fontsize=8)
    c.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run_seed(cfg, seed: int, train_ids, val_ids, unigram: float, progress) -> tuple[dict, dict]:
    """Steps 2 and 3 for one seed: (scalar metrics, per-step histories and RM losses)."""
    lm = pretrain(cfg, train_ids, seed)
    ref_val = evaluate(lm, val_ids, cfg.seq_len, EVAL_BATCH, EVAL_BATCHES)
    rm, rm_losses = train_reward_model(lm, cfg, train_ids, seed + 1)
    acc = pairwise_accuracy(rm, val_ids, cfg, cfg.eval_pairs, seed + 2)
    normalise(rm, lm, train_ids, cfg, seed + 4)
    runs = {}
    for beta in (cfg.beta, 0.0):  # paired: same prompts and sampling noise for both β
        runs[f"β = {beta:g}"] = optimise_policy(lm, rm, cfg, val_ids, beta, seed + 3, progress)
    k = cfg.window
    pen, free = runs[f"β = {cfg.beta:g}"], runs["β = 0"]
    m = {
        "reference_val_loss": ref_val,
        "reference_below_unigram": unigram - ref_val,
        "rm_final_loss": statistics.fmean(rm_losses[-20:]),
        "rm_heldout_accuracy": acc["all"],
        "rm_heldout_accuracy_shuffled": acc["shuffled"],
        "rm_heldout_accuracy_elsewhere": acc["elsewhere"],
        "reward_start": window_mean(pen, "reward", True, k),
        # spread of the reward over the reference policy's own samples (first step: π = π_ref)
        "reward_sd_reference": pen[0]["reward_sd"],
        "reward_end_penalised": window_mean(pen, "reward", False, k),
        "reward_end_unpenalised": window_mean(free, "reward", False, k),
        "kl_end_penalised": window_mean(pen, "kl", False, k),
        "kl_end_unpenalised": window_mean(free, "kl", False, k),
    }
    m["reward_gain_penalised"] = m["reward_end_penalised"] - m["reward_start"]
    m["reward_gain_effect_size"] = m["reward_gain_penalised"] / m["reward_sd_reference"]
    # eq. 2 is at least its value at π_ref whenever β·KL ≤ reward gain; the slack says how far
    # inside that bound the penalised policy stays (in nats)
    m["kl_bound_slack"] = m["reward_gain_penalised"] / cfg.beta - m["kl_end_penalised"]
    m["kl_ratio_unpenalised_over_penalised"] = m["kl_end_unpenalised"] / max(
        m["kl_end_penalised"], 1e-6
    )
    return m, {"runs": runs, "rm_losses": rm_losses}


def main(cfg, ctx: RunContext) -> None:
    train_ids, val_ids, _ = lm_token_streams(vocab_size=cfg.vocab_size)
    # The learned gate's floor for the reference policy: unigram cross-entropy on the
    # tokens evaluate() scores.
    span = val_ids[: EVAL_BATCHES * EVAL_BATCH * cfg.seq_len + 1]
    unigram = unigram_entropy(train_ids, cfg.vocab_size, span[1:])
    ctx.metrics["unigram_nats"] = unigram
    first = None
    for seed in ctx.progress(seeds_for(ctx.seed, cfg.seeds), desc="seeds"):
        m, extra = run_seed(cfg, seed, train_ids, val_ids, unigram, ctx.progress)
        for key, value in m.items():  # one value per seed under every key
            ctx.metrics.setdefault(key, []).append(value)
        if first is None:
            first = extra
            ctx.metrics["history"] = extra["runs"]  # per-step curves of the first seed
        ctx.log(
            f"  seed {seed}: accuracy {m['rm_heldout_accuracy']:.3f}, KL ratio "
            f"{m['kl_ratio_unpenalised_over_penalised']:.2f}"
        )
    plot(first["runs"], first["rm_losses"], ctx.figure_path("rlhf.png"))
