"""Linformer: the projected attention, the spectrum and JL tools, the memory reader."""

import math

import torch

from repro.common.memory import peak_bytes
from repro.papers.linformer.model import (
    Encoder,
    EncoderConfig,
    full_attention,
    linformer_attention,
    mask_tokens,
)
from repro.papers.linformer.run import (
    attention_maps,
    cumulative_spectrum,
    jl_errors,
    loglog_slope,
    mean_entropy,
    shuffle_rows,
)


def qkv(n=32, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(2, 3, n, d, generator=g, dtype=torch.float64) for _ in range(3))


def test_identity_projection_is_full_attention():
    q, k, v = qkv()
    eye = torch.eye(32, dtype=torch.float64)
    torch.testing.assert_close(
        linformer_attention(q, k, v, eye, eye)[0], full_attention(q, k, v)[0]
    )


def test_projection_scores_are_n_by_k():
    q, k, v = qkv()
    e = torch.randn(5, 32, dtype=torch.float64)
    y, p = linformer_attention(q, k, v, e, e)
    assert p.shape == (2, 3, 32, 5) and y.shape == (2, 3, 32, 8)
    torch.testing.assert_close(p.sum(-1), torch.ones(2, 3, 32, dtype=torch.float64))


def test_spectrum_of_known_matrices():
    uniform = torch.full((8, 8), 1 / 8, dtype=torch.float64)
    assert math.isclose(cumulative_spectrum(uniform)[0].item(), 1.0, rel_tol=1e-9)
    perm = torch.eye(8, dtype=torch.float64)[torch.randperm(8)]
    torch.testing.assert_close(
        cumulative_spectrum(perm), torch.arange(1, 9, dtype=torch.float64) / 8
    )


def test_shuffle_keeps_row_distributions():
    p = torch.softmax(torch.randn(4, 10, 10, dtype=torch.float64), -1)
    s = shuffle_rows(p, torch.Generator().manual_seed(0))
    torch.testing.assert_close(s.sort(-1).values, p.sort(-1).values)
    assert math.isclose(mean_entropy(s), mean_entropy(p), rel_tol=1e-12)
    # a matrix whose rows all point at one column is rank 1; shuffled it is not
    sink = torch.zeros(16, 16, dtype=torch.float64)
    sink[:, 0] = 1
    assert cumulative_spectrum(sink)[0] > 0.999
    assert cumulative_spectrum(shuffle_rows(sink, torch.Generator().manual_seed(1)))[0] < 0.9


def test_jl_error_shrinks_and_full_rank_svd_is_exact():
    g = torch.Generator().manual_seed(2)
    p = torch.softmax(3 * torch.randn(2, 24, 24, generator=g, dtype=torch.float64), -1)
    v = torch.randn(2, 24, 4, generator=g, dtype=torch.float64)
    r = jl_errors(p, v, [2, 8, 24], draws=20, gen=g)
    assert r["random"]["2"] > r["random"]["8"] > r["random"]["24"]
    assert r["svd"]["24"] < 1e-12


def test_peak_bytes_sees_the_score_matrix():
    q, k, v = (t.float() for t in qkv(n=256))
    full = peak_bytes(full_attention, q, k, v)
    assert full >= 2 * 3 * 256 * 256 * 4  # scores for 2 × 3 heads, float32
    e = torch.randn(16, 256)
    assert peak_bytes(linformer_attention, q, k, v, e, e) < full / 4


def test_masking_recipe():
    x = torch.randint(10, 50, (64, 64), generator=torch.Generator().manual_seed(3))
    inp, tgt = mask_tokens(x, 4, 50, 0.15, torch.Generator().manual_seed(4))
    chosen = tgt != -100
    assert 0.12 < chosen.float().mean() < 0.18
    assert torch.equal(inp[~chosen], x[~chosen])
    assert 0.7 < (inp[chosen] == 4).float().mean() < 0.9


def test_encoder_maps_and_linformer_variant():
    cfg = EncoderConfig(vocab_size=30, seq_len=16, d_model=16, n_layer=2, n_head=2)
    idx = torch.randint(0, 30, (3, 16))
    maps = attention_maps(Encoder(cfg), idx)
    assert len(maps) == 2 and maps[0][0].shape == (3, 2, 16, 16)
    lin = Encoder(EncoderConfig(**{**cfg.__dict__, "proj_k": 4}))
    logits, loss = lin(idx, idx)
    assert logits.shape == (3, 16, 30) and torch.isfinite(loss)


def test_loglog_slope():
    assert math.isclose(loglog_slope([1, 2, 4, 8], [3, 12, 48, 192]), 2.0, rel_tol=1e-12)


def test_masked_unigram_scores_the_masked_tokens():
    """The learned gate's floor is the unigram over exactly the tokens the MLM loss scores."""
    from types import SimpleNamespace

    from repro.common.stats import unigram_entropy
    from repro.papers.linformer.run import masked_unigram

    cfg = SimpleNamespace(vocab_size=30)
    g = torch.Generator().manual_seed(0)
    train, windows = torch.randint(0, 30, (500,), generator=g), torch.randint(0, 30, (4, 32))
    _, tgt = mask_tokens(windows, 0, 30, 0.15, torch.Generator().manual_seed(9))
    want = unigram_entropy(train, 30, tgt[tgt != -100])
    assert masked_unigram(train, windows, cfg, 9) == want
