"""Attention Is All You Need: the measurements at tiny sizes, MHA against torch, the tasks."""

import math

import pytest
import torch

from repro.papers.attention_is_all_you_need.model import (
    MultiHeadAttention,
    Seq2SeqConfig,
    Transformer,
    noam_lr,
    sinusoidal_encoding,
)
from repro.papers.attention_is_all_you_need.run import (
    copy_into_torch,
    dot_product_stats,
    mha_difference,
    relative_position_residual,
)
from repro.papers.attention_is_all_you_need.tasks import (
    BOS,
    EOS,
    PAD,
    exact_match,
    loss_fn,
    make_batch,
    sources,
    transform,
)


def test_dot_product_variance_and_saturation():
    g = torch.Generator().manual_seed(0)
    var, var_s, p_raw, p_scaled = dot_product_stats(256, 20000, 32, 500, g)
    assert abs(var / 256 - 1) < 0.05 and abs(var_s - 1) < 0.05
    assert p_raw > p_scaled + 0.3


def test_sinusoidal_offsets_are_linear_but_a_shuffle_is_not():
    pe = sinusoidal_encoding(512, 64)
    assert relative_position_residual(pe, 7) < 1e-8
    shuffled = pe[torch.randperm(512, generator=torch.Generator().manual_seed(0))]
    assert relative_position_residual(shuffled, 7) > 0.1


def test_mha_matches_torch_in_float64():
    out, w = mha_difference(8, torch.Generator().manual_seed(1))
    assert out < 1e-10 and w < 1e-10


def test_mha_comparison_notices_a_miswired_head():
    """Swapping W^K and W^V in torch's copy must show up as a large difference."""
    torch.manual_seed(0)
    ours = MultiHeadAttention(8, 2).double()
    theirs = torch.nn.MultiheadAttention(8, 2, batch_first=True, dtype=torch.float64)
    copy_into_torch(ours, theirs)
    with torch.no_grad():
        wk, wv = theirs.in_proj_weight[8:16].clone(), theirs.in_proj_weight[16:].clone()
        theirs.in_proj_weight[8:16], theirs.in_proj_weight[16:] = wv, wk
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    assert (ours(x, x, x) - theirs(x, x, x)[0]).abs().max() > 1e-3


@pytest.mark.parametrize("task", ["copy", "reverse", "sort"])
def test_tasks(task):
    src = torch.tensor([[5, 3, 4, PAD], [7, 6, 8, 9]])
    lengths = torch.tensor([3, 4])
    out = transform(task, src, lengths)
    expect = {
        "copy": [[5, 3, 4, PAD], [7, 6, 8, 9]],
        "reverse": [[4, 3, 5, PAD], [9, 8, 6, 7]],
        "sort": [[3, 4, 5, PAD], [6, 7, 8, 9]],
    }[task]
    assert out.tolist() == expect


def test_batches_exclude_held_out_sources():
    g = torch.Generator().manual_seed(0)
    ev_src, _ = make_batch("reverse", 300, 1, 1, 3, g)  # tiny space: the 3 one-symbol sources
    held = sources(ev_src)
    assert held == {(3,), (4,), (5,)}
    src, tgt = make_batch("reverse", 200, 1, 1, 3, g, exclude=held - {(4,)})
    assert sources(src) == {(4,)}  # the other two were held out
    assert (tgt[:, 0] == BOS).all() and ((tgt == EOS).sum(1) == 1).all()


def test_decoder_is_causal():
    torch.manual_seed(0)
    m = Transformer(Seq2SeqConfig(vocab_size=10, d_model=16, n_head=2, d_ff=32, n_layer=2))
    src = torch.randint(3, 10, (2, 6))
    tgt = torch.randint(3, 10, (2, 7))
    a = m(src, tgt)
    tgt2 = tgt.clone()
    tgt2[:, 4:] = torch.randint(3, 10, (2, 3))
    b = m(src, tgt2)
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert (a[:, 4:] - b[:, 4:]).abs().max() > 1e-4


def test_training_a_few_steps_learns_copy():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    m = Transformer(Seq2SeqConfig(vocab_size=6, d_model=32, n_head=2, d_ff=64, n_layer=1))
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    ev_src, ev_tgt = make_batch("copy", 100, 1, 3, 3, g)
    before, _ = exact_match(m, ev_src, ev_tgt)
    for _ in range(150):
        src, tgt = make_batch("copy", 32, 1, 3, 3, g)
        loss = loss_fn(m, src, tgt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after, tok = exact_match(m, ev_src, ev_tgt)
    assert before < 0.2 and after > 0.8 and tok > 0.9


def test_noam_schedule_peaks_at_warmup():
    lrs = [noam_lr(s, 64, 100) for s in range(1, 400)]
    assert max(range(len(lrs)), key=lrs.__getitem__) == 99
    assert math.isclose(lrs[99], 64**-0.5 * 100**-0.5)


def test_main_reports_per_seed_finding_and_gate(tmp_path):
    """Tiny run: one value per seed for the seq2seq finding and for its learned gate."""
    from repro.context import RunContext
    from repro.papers.attention_is_all_you_need import Config
    from repro.papers.attention_is_all_you_need.run import main

    cfg = Config(
        dims=(4, 8),
        samples=200,
        softmax_rows=20,
        seq_len=8,
        d_model=16,
        positions=64,
        offsets=(1, 3),
        mha_trials=2,
        min_len=2,
        max_len=4,
        n_symbols=4,
        model_dim=16,
        n_head=2,
        d_ff=32,
        steps=3,
        batch=8,
        warmup=2,
        eval_sequences=20,
        seeds=2,
    )
    ctx = RunContext(out_dir=tmp_path, show_progress=False)
    assert main(cfg, ctx) is None
    m = ctx.metrics
    assert len(m["min_exact_match"]) == 2 and len(m["seq2seq_below_unigram"]) == 2
    assert len(m["exact_match"]["reverse"]) == 2
    assert m["mha_max_abs_diff"] < 1e-10
