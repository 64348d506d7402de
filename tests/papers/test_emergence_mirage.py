"""Addition encoding, the held-out split, the metrics and the sharpness measure."""

import pytest
import torch

from repro.common.tinylm import LMConfig, TinyLM
from repro.papers.emergence_mirage.addition import (
    EQUALS,
    PLUS,
    VOCAB,
    edit_distance,
    encode,
    is_test_pair,
    sample,
    score,
    sharpness,
)


def test_encoding_both_orders():
    a, b = torch.tensor([47]), torch.tensor([385])
    assert encode(a, b, 3, reverse=False).tolist() == [[0, 4, 7, PLUS, 3, 8, 5, EQUALS, 0, 4, 3, 2]]
    assert encode(a, b, 3, reverse=True).tolist() == [[0, 4, 7, PLUS, 3, 8, 5, EQUALS, 2, 3, 4, 0]]


def test_train_and_test_problems_never_overlap():
    g = torch.Generator().manual_seed(0)
    tr, te = sample(500, 3, g, test=False), sample(500, 3, g, test=True)

    def pairs(x):
        a = x[:, 0] * 100 + x[:, 1] * 10 + x[:, 2]
        b = x[:, 4] * 100 + x[:, 5] * 10 + x[:, 6]
        return a, b

    assert not is_test_pair(*pairs(tr), 3).any()
    assert is_test_pair(*pairs(te), 3).all()
    assert not set(map(tuple, tr.tolist())) & set(map(tuple, te.tolist()))


def test_edit_distance():
    assert edit_distance([1, 2, 3], [1, 2, 3]) == 0
    assert edit_distance([1, 2, 3], [1, 9, 3]) == 1
    assert edit_distance([1, 2, 3, 4], [2, 3, 4, 5]) == 2  # shift: one deletion, one insertion
    assert edit_distance([], [1, 2]) == 2


def test_sharpness():
    assert sharpness([0, 1, 2, 3, 4, 5]) == pytest.approx(0.2)  # steady climb over K = 6
    assert sharpness([0, 0, 0, 0, 0, 1]) == pytest.approx(1.0)  # a single jump
    assert sharpness([0.001, 0.002, 0.004, 0.02, 0.3, 0.9]) > 0.5  # p^L-like curve
    assert sharpness([3, 3, 3]) == 0.0


class Oracle(torch.nn.Module):
    """Puts all probability on the true next token of an addition problem (reversed answers)."""

    def forward(self, x):
        B, T = x.shape
        a = x[:, 0] * 100 + x[:, 1] * 10 + x[:, 2]
        b = x[:, 4] * 100 + x[:, 5] * 10 + x[:, 6]
        digits = [((a + b) // 10**i) % 10 for i in range(4)]  # least significant first
        logits = torch.full((B, T, VOCAB), -30.0)
        for t in range(7, T):  # position t predicts answer digit t − 7
            logits[torch.arange(B), t, digits[t - 7]] = 30.0
        return logits


def test_score_of_a_perfect_model_and_of_a_blank_one():
    test = sample(200, 3, torch.Generator().manual_seed(1), test=True)
    perfect = score(Oracle(), test, 3)
    assert perfect["exact_match"] == 1.0 and perfect["per_token_acc"] == 1.0
    assert perfect["edit_distance"] == 0.0 and perfect["log_lik"] > -1e-6
    torch.manual_seed(0)
    blank = TinyLM(LMConfig(vocab_size=VOCAB, seq_len=11, d_model=8, n_layer=1, n_head=1))
    s = score(blank, test, 3)
    assert s["exact_match"] < 0.05
    assert s["log_lik"] == pytest.approx(-torch.log(torch.tensor(12.0)).item(), abs=0.1)
    assert len(s["position_acc"]) == 4


def test_declaration_findings_per_seed_and_gated():
    from repro.papers.emergence_mirage import REPRO

    assert REPRO.problems() == []
    assert REPRO.make_config("quick", {}).seeds == 3
    assert REPRO.make_config("full", {}).seeds == 5
    for c in REPRO.claims:
        assert c.kind == "finding"
        assert [g.metric for g in c.gates] == ["largest_below_unigram", "upper_half_below_unigram"]
    # the headline is the paired contrast, first
    assert REPRO.claims[0].metric == "contrast_exact_match_minus_edit_distance"


def test_tiny_run_reports_per_seed_lists(tmp_path):
    import types

    from repro.papers.emergence_mirage import Config
    from repro.papers.emergence_mirage.run import main

    cfg = Config(widths=(8, 12, 16), steps=3, batch_size=8, test_size=50, seeds=2)
    ctx = types.SimpleNamespace(
        seed=0,
        metrics={},
        progress=lambda it, desc=None: it,
        log=lambda *a: None,
        figure_path=lambda name: tmp_path / name,
    )
    main(cfg, ctx)
    for key in (
        "sharpness_exact_match",
        "sharpness_per_token_acc",
        "sharpness_edit_distance",
        "em_independence_max_error",
        "largest_below_unigram",
        "upper_half_below_unigram",
        "contrast_exact_match_minus_edit_distance",
        "contrast_exact_match_minus_per_token_acc",
    ):
        assert len(ctx.metrics[key]) == 2, key
    m = ctx.metrics
    for i in range(2):
        # the contrast is paired within a seed's family
        assert m["contrast_exact_match_minus_edit_distance"][i] == pytest.approx(
            m["sharpness_exact_match"][i] - m["sharpness_edit_distance"][i]
        )
        below = m["below_unigram_by_width"][i]
        assert len(below) == 3
        assert m["largest_below_unigram"][i] == pytest.approx(below[-1])
        # the upper half of (8, 12, 16) is (12, 16)
        assert m["upper_half_below_unigram"][i] == pytest.approx(min(below[1:]))
