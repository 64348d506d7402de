"""The two learned pieces of RLHF at toy scale: a Bradley–Terry reward model and a policy
trained against it with a KL penalty to a frozen reference.

Reward model loss (eq. 1, with K = 2 responses per prompt):

    loss(θ) = −E_{(x, y_w, y_l)} [ log σ( r_θ(x, y_w) − r_θ(x, y_l) ) ]

RL objective (eq. 2, without the pretraining-mix term, i.e. γ = 0 as in "PPO" not "PPO-ptx"):

    objective(φ) = E_{x, y ~ π_φ(·|x)} [ r_θ(x, y) − β · log( π_φ(y|x) / π_ref(y|x) ) ]

We maximise it with REINFORCE (a batch-mean baseline) instead of PPO: the objective is the
paper's, the optimiser is simpler. Its gradient is E[(R − b) ∇ log π_φ(y|x)] with
R = r_θ(x, y) − β · log(π_φ/π_ref)(y|x): the extra term from differentiating log π_φ inside R
has expectation zero.
"""

from __future__ import annotations

from collections import Counter

import torch
import torch.nn as nn
import torch.nn.functional as F

from repro.common.tinylm import TinyLM


class RewardModel(nn.Module):
    """A scalar score for a (prompt, response) sequence, from a GPT body initialised from the
    pretrained LM (the paper starts its reward models from the supervised policy).

    The paper reads the score off a linear head at the last token. At our size that head did
    not learn the preference at all (pilot: Bradley–Terry loss stuck at log 2, held-out
    accuracy 53% after 600 steps), so our head reads the body's own next-token predictions
    instead: r = a · (mean log-probability of the response tokens given what precedes them)
    + b. The body is trained with the Bradley–Terry loss like the rest, and a = 0 at the
    start, so the model starts with no preference.
    """

    def __init__(self, body: TinyLM, prompt_len: int):
        super().__init__()
        self.body = body
        self.prompt_len = prompt_len
        self.a = nn.Parameter(torch.zeros(()))
        self.b = nn.Parameter(torch.zeros(()))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        n_resp = idx.shape[1] - self.prompt_len
        return self.a * sequence_logprob(self.body, idx, self.prompt_len) / n_resp + self.b  # (B,)


def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """−log σ(r_w − r_l), averaged over pairs (eq. 1)."""
    return -F.logsigmoid(r_chosen - r_rejected).mean()


def sequence_logprob(lm: TinyLM, seq: torch.Tensor, n_prompt: int) -> torch.Tensor:
    """log π(y|x) summed over the response tokens seq[:, n_prompt:]: (B,)."""
    logits = lm(seq[:, :-1])  # (B, T-1, V); position t predicts token t+1
    logp = logits.log_softmax(-1).gather(-1, seq[:, 1:, None]).squeeze(-1)  # (B, T-1)
    return logp[:, n_prompt - 1 :].sum(-1)


@torch.no_grad()
def sample(lm: TinyLM, prompt: torch.Tensor, n_new: int, gen: torch.Generator) -> torch.Tensor:
    """Ancestral sampling at temperature 1; returns prompt + response: (B, P + n_new)."""
    seq = prompt
    for _ in range(n_new):
        logits = lm(seq[:, -lm.cfg.seq_len :])[:, -1]
        nxt = torch.multinomial(logits.softmax(-1), 1, generator=gen)
        seq = torch.cat([seq, nxt], dim=1)
    return seq


def policy_step(
    policy: TinyLM,
    ref: TinyLM,
    rm: RewardModel,
    opt: torch.optim.Optimizer,
    prompts: torch.Tensor,
    n_new: int,
    beta: float,
    gen: torch.Generator,
) -> dict:
    """One REINFORCE step on eq. 2. Returns the batch's mean reward r_θ, the mean of
    log(π/π_ref) over the sampled responses (an unbiased estimate of KL(π‖π_ref)) and the
    mean regularised objective r − β·KL."""
    P = prompts.shape[1]
    policy.eval()  # sampling: no dropout (there is none, but be explicit)
    seq = sample(policy, prompts, n_new, gen)
    with torch.no_grad():
        reward = rm(seq)
        ref_lp = sequence_logprob(ref, seq, P)
    policy.train()
    lp = sequence_logprob(policy, seq, P)
    log_ratio = lp.detach() - ref_lp
    shaped = reward - beta * log_ratio
    advantage = shaped - shaped.mean()  # batch-mean baseline
    loss = -(advantage * lp).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
    opt.step()
    return {
        "reward": reward.mean().item(),
        "reward_sd": reward.std().item(),
        "kl": log_ratio.mean().item(),
        "objective": shaped.mean().item(),
    }


def _ngrams(tokens: list[int], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def gold_score(responses: torch.Tensor, truths: torch.Tensor) -> torch.Tensor:
    """The gold reward: the labelling rule turned into a score for any response.

    The preference rule says the text that really follows the prompt beats the same tokens
    shuffled and beats a passage from elsewhere. As a score: how much of the real continuation
    a response reproduces, the mean of its clipped unigram and clipped bigram precision
    against the real continuation (each n-gram counted at most as often as it occurs there).
    The real continuation scores 1; its shuffle keeps the unigrams but loses bigrams; a passage
    from elsewhere shares few of either. So the score orders every pair the rule labels the
    same way, and unlike the learned reward model it cannot be fooled by fluent-looking text.

    responses, truths: (B, n) token ids of the sampled and the real continuations. Returns (B,)
    in [0, 1]."""
    if responses.shape != truths.shape or responses.dim() != 2:
        raise ValueError(
            f"responses and truths must be (B, n) of one shape; got "
            f"{tuple(responses.shape)} and {tuple(truths.shape)}"
        )
    out = []
    for y, z in zip(responses.tolist(), truths.tolist()):
        score = 0.0
        for n in (1, 2):
            cy, cz = _ngrams(y, n), _ngrams(z, n)
            score += sum(min(c, cz[g]) for g, c in cy.items()) / max(1, sum(cy.values()))
        out.append(score / 2)
    return torch.tensor(out)
