"""Transformer-XL: the relative shift, memory handling, causality and stop-gradient."""

from dataclasses import replace

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from repro.papers.transformer_xl.model import (
    TransformerXL,
    XLConfig,
    rel_scores_explicit,
    rel_shift,
)
from repro.papers.transformer_xl.run import streams

CFG = XLConfig(vocab_size=30, d_model=16, n_layer=2, n_head=2, d_ff=32)


@settings(max_examples=40, deadline=None)
@given(L=st.integers(1, 12), M=st.integers(0, 12), seed=st.integers(0, 10_000))
def test_rel_shift_equals_explicit_gather(L, M, seed):
    g = torch.Generator().manual_seed(seed)
    K = L + M
    q_v = torch.randn(2, 3, L, 4, generator=g, dtype=torch.float64)
    pos_k = torch.randn(K, 3, 4, generator=g, dtype=torch.float64)
    fast = rel_shift(torch.einsum("bhid,khd->bhik", q_v, pos_k))
    slow = rel_scores_explicit(q_v, pos_k, M)
    causal = torch.ones(L, K, dtype=torch.bool).tril(diagonal=M)
    torch.testing.assert_close(fast[..., causal], slow[..., causal])


def test_memory_is_the_past_and_carries_no_gradient():
    torch.manual_seed(0)
    model = TransformerXL(CFG)
    x = torch.randint(0, 30, (2, 6))
    _, mems = model(x, None, mem_len=4)
    assert len(mems) == CFG.n_layer and mems[0].shape == (2, 4, 16)
    assert not any(m.requires_grad for m in mems)
    torch.testing.assert_close(mems[0], model.emb(x)[:, -4:])  # layer-1 input = embeddings
    # memory grows across segments up to mem_len
    _, mems2 = model(x, mems, mem_len=10)
    assert mems2[0].shape[1] == 10


def test_memory_changes_predictions_and_zero_memory_ignores_it():
    torch.manual_seed(0)
    model = TransformerXL(CFG).eval()
    a, b = torch.randint(0, 30, (1, 8)), torch.randint(0, 30, (1, 8))
    x = torch.randint(0, 30, (1, 8))
    _, mem_a = model(a, None, 8)
    _, mem_b = model(b, None, 8)
    out_a, _ = model(x, mem_a, 8)
    out_b, _ = model(x, mem_b, 8)
    assert not torch.allclose(out_a, out_b)  # the past segment is seen
    no_a, _ = model(x, mem_a, 0)
    no_b, _ = model(x, mem_b, 0)
    torch.testing.assert_close(no_a, no_b)  # memory length 0: segments are isolated


def test_causal_within_segment():
    torch.manual_seed(0)
    model = TransformerXL(CFG).eval()
    _, mems = model(torch.randint(0, 30, (1, 5)), None, 5)
    x = torch.randint(0, 30, (1, 7))
    y = x.clone()
    y[0, 5] = (x[0, 5] + 1) % 30
    torch.testing.assert_close(model(x, mems, 5)[0][:, :5], model(y, mems, 5)[0][:, :5])


def test_relative_positions_make_outputs_shift_invariant():
    # The same tokens and the same memory give the same outputs whatever came long before:
    # no absolute position enters the model.
    torch.manual_seed(0)
    model = TransformerXL(replace(CFG, n_layer=1)).eval()
    mem_tokens = torch.randint(0, 30, (1, 6))
    x = torch.randint(0, 30, (1, 4))
    _, m1 = model(mem_tokens, None, 6)
    _, old = model(torch.randint(0, 30, (1, 9)), None, 6)
    _, m2 = model(mem_tokens, old, 6)  # layer-1 memory is the embedding in both cases
    torch.testing.assert_close(m1[0], m2[0])
    torch.testing.assert_close(model(x, m1, 6)[0], model(x, m2, 6)[0])


def test_streams_are_contiguous_rows():
    ids = torch.arange(23)
    s = streams(ids, 4)
    assert s.shape == (4, 5)
    assert s[1].tolist() == [5, 6, 7, 8, 9]


def test_arms_are_paired_by_seed_and_unigram_scores_the_evaluated_tokens():
    """Same seed -> same initial weights for both arms: untrained, they score alike at memory 0."""
    from repro.common.stats import unigram_entropy
    from repro.context import RunContext
    from repro.papers.transformer_xl import Config
    from repro.papers.transformer_xl.run import run_seed, scored_unigram

    cfg = Config(
        vocab_size=30,
        d_model=16,
        n_layer=1,
        n_head=2,
        seg_len=4,
        batch_size=2,
        steps=0,
        eval_streams=2,
        eval_segments=3,
        warmup_segments=2,
    )
    g = torch.Generator().manual_seed(0)
    train_ids, val_ids = torch.randint(0, 30, (400,), generator=g), torch.randint(0, 30, (80,))
    ctx = RunContext(out_dir=None, show_progress=False)
    r = run_seed(cfg, ctx, train_ids, val_ids, [0, 2, 4], seed=3)
    assert len(r["curve_xl"]) == 3
    assert r["curve_xl"][0] == r["curve_plain"][0]
    scored = streams(val_ids, 2)[:, 9:21]  # after 2 warm-up segments of 4, shifted by one
    assert scored_unigram(cfg, train_ids, val_ids) == unigram_entropy(train_ids, 30, scored)
