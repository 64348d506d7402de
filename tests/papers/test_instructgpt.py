"""InstructGPT at toy scale: preference pairs, the Bradley–Terry loss, the log-probabilities
the KL estimate uses, a policy step that moves toward a planted reward, the gold score and the
over-optimisation statistics."""

import copy
import math

import pytest
import torch

from repro.common.tinylm import LMConfig, TinyLM
from repro.papers.instructgpt import REPRO
from repro.papers.instructgpt.rlhf import (
    RewardModel,
    bradley_terry_loss,
    gold_score,
    policy_step,
    sequence_logprob,
)
from repro.papers.instructgpt.run import (
    gold_pair_scores,
    over_optimisation,
    pairwise_accuracy,
    preference_pairs,
)


def _lm(seed=0, vocab=12):
    torch.manual_seed(seed)
    return TinyLM(LMConfig(vocab_size=vocab, seq_len=16, d_model=16, n_layer=1, n_head=2))


def test_pairs_share_the_prompt_and_chosen_is_the_real_continuation():
    ids = torch.arange(1000) % 97
    chosen, rejected, kind = preference_pairs(ids, 50, 6, 5, torch.Generator().manual_seed(0))
    assert torch.equal(chosen[:, :6], rejected[:, :6])
    # chosen is the real continuation of the prompt
    assert torch.equal(chosen[:, 1:], (chosen[:, :-1] + 1) % 97)
    assert (chosen[:, 6:] != rejected[:, 6:]).any(-1).all()  # never the chosen response itself
    shuffled, elsewhere = kind == 0, kind == 1
    assert shuffled.any() and elsewhere.any()
    # kind 0: the same tokens, another order
    assert torch.equal(chosen[shuffled, 6:].sort(-1).values, rejected[shuffled, 6:].sort(-1).values)
    # kind 1: a real passage from elsewhere (consecutive in the corpus, like any text)
    other = rejected[elsewhere, 6:]
    assert torch.equal(other[:, 1:], (other[:, :-1] + 1) % 97)


def test_bradley_terry_loss_is_the_logistic_loss_on_the_margin():
    rw, rl = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0])
    expect = (math.log1p(math.exp(-2.0)) + math.log(2.0)) / 2
    assert bradley_terry_loss(rw, rl).item() == pytest.approx(expect)
    # only the difference matters (a constant shift of all rewards changes nothing)
    assert bradley_terry_loss(rw + 5, rl + 5).item() == pytest.approx(expect)


def test_sequence_logprob_sums_the_response_tokens_only():
    lm = _lm()
    seq = torch.randint(0, 12, (3, 9))
    logp = lm(seq[:, :-1]).log_softmax(-1)
    manual = sum(logp[:, t - 1].gather(-1, seq[:, t : t + 1]).squeeze(-1) for t in range(5, 9))
    torch.testing.assert_close(sequence_logprob(lm, seq, 5), manual)


def test_reward_model_starts_neutral():
    rm = RewardModel(_lm(), prompt_len=3)
    assert torch.all(rm(torch.randint(0, 12, (4, 7))) == 0)  # a = b = 0: no preference yet


class _CountToken(torch.nn.Module):
    """A planted reward: how often token 3 appears in the response."""

    def __init__(self, prompt_len):
        super().__init__()
        self.p = prompt_len

    def forward(self, seq):
        return (seq[:, self.p :] == 3).float().sum(-1)


def test_policy_steps_raise_a_planted_reward_and_the_kl_estimate_starts_at_zero():
    policy, ref = _lm(1), _lm(1)
    rm = _CountToken(4)
    opt = torch.optim.Adam(policy.parameters(), lr=3e-2)
    gen = torch.Generator().manual_seed(0)
    prompts = torch.randint(0, 12, (32, 4), generator=gen)
    hist = [policy_step(policy, ref, rm, opt, prompts, 6, 0.0, gen) for _ in range(30)]
    assert abs(hist[0]["kl"]) < 1e-5  # π = π_ref before the first update
    assert sum(h["reward"] for h in hist[-5:]) / 5 > hist[0]["reward"] + 1.0
    assert hist[-1]["kl"] > 0.1


def test_the_penalty_holds_the_policy_closer():
    kls = {}
    for beta in (0.0, 2.0):
        policy, ref = _lm(1), _lm(1)
        opt = torch.optim.Adam(policy.parameters(), lr=3e-2)
        gen = torch.Generator().manual_seed(0)
        prompts = torch.randint(0, 12, (32, 4), generator=gen)
        hist = [
            policy_step(policy, ref, _CountToken(4), opt, prompts, 6, beta, gen) for _ in range(30)
        ]
        kls[beta] = sum(h["kl"] for h in hist[-5:]) / 5
    assert kls[2.0] < kls[0.0]


def test_gold_score_is_one_for_the_real_text_and_lower_for_a_shuffle_or_repetition():
    truth = torch.tensor([[5, 6, 7, 8, 9, 10]])
    assert gold_score(truth, truth).item() == 1.0
    shuffled = torch.tensor([[6, 5, 7, 8, 9, 10]])  # unigrams kept, two of five bigrams lost
    assert gold_score(shuffled, truth).item() == pytest.approx((1 + 3 / 5) / 2)
    # repeating a right token is clipped: one 7 counts, the other five do not
    assert gold_score(torch.tensor([[7] * 6]), truth).item() == pytest.approx((1 / 6 + 0) / 2)
    with pytest.raises(ValueError, match="one shape"):
        gold_score(truth[:, :3], truth)


def test_gold_rule_orders_labelled_pairs_as_the_rule_does():
    ids = torch.randint(0, 50, (5000,), generator=torch.Generator().manual_seed(1))
    cfg = REPRO.config()
    acc = pairwise_accuracy(gold_pair_scores(cfg.prompt_len), ids, cfg, 200, 0)
    assert acc["all"] == 1.0


def _curve(gold_a, gold_b, proxy_b):
    return [
        {"step": 10 * i, "gold_A": a, "gold_B": b, "proxy_B": p, "kl_B": float(i)}
        for i, (a, b, p) in enumerate(zip(gold_a, gold_b, proxy_b))
    ]


def test_over_optimisation_picks_the_peak_on_set_a_and_reads_set_b():
    # A peaks at step 20; B's own highest point (step 10) is not used
    s = over_optimisation(_curve([1, 2, 3, 1], [2.0, 3.0, 2.5, 1.0], [0, 1, 2, 4]))
    assert s["peak_step"] == 20
    assert s["rise"] == pytest.approx(0.25)  # (2.5 − 2) / 2
    assert s["fall"] == pytest.approx(0.75)  # (2.5 − 1) / 2
    assert s["proxy_after_peak"] == pytest.approx(2.0)
    assert s["kl_at_peak"] == 2.0 and s["kl_end"] == 3.0
    # a curve that only falls has its peak at the start: no rise
    s = over_optimisation(_curve([3, 2, 1], [3.0, 2.0, 1.5], [0, 1, 2]))
    assert s["peak_step"] == 0 and s["rise"] == 0.0 and s["fall"] == pytest.approx(0.5)


def test_declaration_is_consistent():
    assert REPRO.problems() == []
    assert copy.deepcopy(REPRO.config()) is not None


def test_run_reports_one_value_per_seed(tmp_path):
    """A tiny run: every claim's metric and the reference's learned-gate metric per seed."""
    from dataclasses import replace

    from repro.context import RunContext
    from repro.papers.instructgpt.run import main

    cfg = replace(
        REPRO.config(),
        pretrain_steps=2,
        rm_steps=2,
        rm_batch=4,
        eval_pairs=8,
        rl_steps=3,
        rl_batch=4,
        eval_every=2,
        eval_prompts=4,
        seeds=2,
    )
    ctx = RunContext(out_dir=tmp_path, show_progress=False)
    main(cfg, ctx)
    for claim in REPRO.claims:
        if claim.kind == "check":
            assert 0.0 <= ctx.metrics[claim.metric] <= 1.0
            continue
        assert len(ctx.metrics[claim.metric]) == 2
        for gate in claim.gates:
            assert len(ctx.metrics[gate.metric]) == 2
    # checkpoints at steps 0 and 2, then the last step (3), for both β
    assert [r["step"] for r in ctx.metrics["history"]["β = 0"]] == [0, 2, 3]
