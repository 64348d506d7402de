"""Training language models to follow instructions with human feedback (Ouyang et al. 2022),
arXiv:2203.02155. Steps 2 and 3 of the method (Fig. 2), at toy scale on Brown text.

Step 2, the reward model: a small GPT body with a scalar head learns from preference pairs
with the Bradley–Terry loss (eq. 1). The preferences come from a checkable rule instead of
labellers: after a real prompt from the corpus, the text that really follows is preferred to
the same tokens shuffled. Both responses hold the same tokens, so only word order separates
them; the rule needs no judgement and every label is right.

Step 3, the policy: a small GPT pretrained on Brown text (standing in for the supervised
model, which is also the reference π_ref) writes continuations of held-out prompts and is
trained to maximise eq. 2, reward minus β·log(π/π_ref), by REINFORCE with a batch-mean
baseline (the paper uses PPO; the objective is the same). The same run with β = 0 shows what
the penalty prevents.

Claims (all four are findings, measured on trained models; one value per seed, 3 seeds in
quick and 5 in full; each seed pretrains its own reference, reward model and policies, and the
β and β = 0 runs of a seed share prompts and sampling noise):
  * finding ``reward-model-accuracy``: the reward model ranks held-out pairs well above chance;
  * finding ``reward-rises``: with the KL penalty, policy optimisation raises the reward;
  * finding ``kl-bounded``: ... while the KL to the reference stays inside the bound the
    objective implies (eq. 2 improves on π_ref exactly when β·KL is below the reward gained);
  * finding ``kl-larger-without-penalty``: without the penalty the KL grows larger (per-seed
    paired ratio).
Every finding is gated on the reference LM (the start of the reward model and the policies)
having learned: its held-out loss below the unigram floor by 0.5 nats (quick) / 1.0 (full).

Left out: the supervised fine-tuning step, human labels and every human evaluation, PPO's
clipping and value function, the pretraining mix (PPO-ptx), and all of the paper's scale.
"""

from dataclasses import dataclass

from repro.claims import AtLeast, Claim, Reproduction, learned_gate


@dataclass(frozen=True)
class Config:
    vocab_size: int = 512  # BPE vocabulary trained on the Brown training documents
    seq_len: int = 64  # context of the GPTs
    d_model: int = 64  # policy, reference and reward-model body share this shape
    n_layer: int = 2
    n_head: int = 4
    pretrain_steps: int = 500  # the reference policy's language-model training
    lm_lr: float = 3e-3
    prompt_len: int = 24  # prompt tokens (real text)
    response_len: int = 12  # response tokens (compared, or sampled by the policy)
    rm_steps: int = 200  # reward-model steps
    rm_batch: int = 16  # preference pairs per step
    rm_lr: float = 1e-3
    eval_pairs: int = 500  # held-out pairs for the accuracy
    beta: float = 0.1  # KL coefficient of eq. 2 (per response)
    rl_steps: int = 60  # policy steps per run (one run with β, one with β = 0)
    rl_batch: int = 16  # sampled responses per step
    rl_lr: float = 3e-4  # Adam rate for the policy
    window: int = 10  # steps averaged for start/end values
    seeds: int = 3  # independent seeds (ctx.seed + i): reference, reward model, both policies


REPRO = Reproduction(
    id="instructgpt",
    papers=("instructgpt",),
    title="Bradley–Terry reward model and KL-penalised policy optimisation",
    config=Config,
    presets={
        # 3 seeds
        "quick": {},
        # 5 seeds; a better-trained reference, a longer reward-model run, 4× the policy steps
        "full": {
            "seeds": 5,
            "pretrain_steps": 2000,
            "rm_steps": 800,
            "eval_pairs": 2000,
            "rl_steps": 240,
            "rl_batch": 32,
            "window": 20,
        },
    },
    claims=(
        Claim(
            id="reward-model-accuracy",
            statement="a reward model trained with the Bradley–Terry loss ranks held-out "
            "preference pairs well above chance",
            source="§3.5 (eq. 1)",
            paper_value="reward models predict held-out labellers' choices; labellers agree "
            "with each other 72.6 ± 1.5% of the time",
            metric="rm_heldout_accuracy",
            rule=AtLeast(0.7),  # well above chance (0.5), at the level of labeller agreement
            unit="pairwise accuracy (per seed)",
            kind="finding",
            gates=(learned_gate("reference"),),
        ),
        Claim(
            id="reward-rises",
            statement="optimising eq. 2 with the KL penalty raises the reward-model score",
            source="§3.5 (eq. 2)",
            paper_value="PPO raises the reward; the tuned models are preferred by labellers",
            metric="reward_gain_effect_size",
            rule=AtLeast(0.5),  # a shift of half the reference samples' reward spread
            unit="reward gain / sd of the reference policy's rewards (per seed)",
            kind="finding",
            gates=(learned_gate("reference"),),
        ),
        Claim(
            id="kl-bounded",
            statement="with the penalty the KL to the reference stays within the bound of the "
            "objective: β·KL below the reward gained",
            source="§3.5 (eq. 2)",
            paper_value="the per-token KL penalty keeps the policy close to the SFT model",
            metric="kl_bound_slack",
            rule=AtLeast(0.0),  # inside the bound: eq. 2 at the end ≥ eq. 2 at π_ref
            unit="reward gain/β − KL (nats) (per seed)",
            kind="finding",
            gates=(learned_gate("reference"),),
        ),
        Claim(
            id="kl-larger-without-penalty",
            statement="without the penalty (β = 0) the policy drifts further from the reference",
            source="§3.5 (eq. 2)",
            paper_value="the penalty mitigates over-optimisation of the reward model",
            metric="kl_ratio_unpenalised_over_penalised",
            rule=AtLeast(2.0),  # clearly larger: at least twice the penalised run's KL
            unit="KL(β = 0) / KL(β) (per seed)",
            kind="finding",
            gates=(learned_gate("reference"),),
        ),
    ),
    timeout_s=400,
)
