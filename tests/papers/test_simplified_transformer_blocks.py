"""Shaped attention and the simplified blocks."""

import torch

from repro.common.tinylm import LMConfig
from repro.papers.simplified_transformer_blocks.model import ShapedAttention, SmallLM

CFG = LMConfig(vocab_size=30, seq_len=10, d_model=16, n_layer=2, n_head=4, bias=False)


def test_shaped_attention_is_identity_with_zero_queries():
    torch.manual_seed(0)
    attn = ShapedAttention(CFG, shaped=True)
    with torch.no_grad():
        attn.qk.weight[:16].zero_()
    x = torch.randn(2, 10, 16)
    torch.testing.assert_close(attn(x), x, rtol=0, atol=1e-6)


def test_naive_attention_with_zero_queries_averages_the_prefix():
    """Unshaped, the same start is the uniform causal average C·x: tokens are mixed, the
    rank-collapse direction the shaping removes."""
    attn = ShapedAttention(CFG, shaped=False)
    with torch.no_grad():
        attn.qk.weight[:16].zero_()
    x = torch.randn(1, 10, 16)
    expected = x.cumsum(1) / torch.arange(1, 11).view(1, -1, 1)
    torch.testing.assert_close(attn(x), expected, rtol=1e-5, atol=1e-6)


def test_shaped_attention_is_causal():
    torch.manual_seed(1)
    attn = ShapedAttention(CFG, shaped=True)
    x = torch.randn(1, 10, 16)
    y = attn(x)
    x2 = x.clone()
    x2[:, 6:] += 5.0
    torch.testing.assert_close(attn(x2)[:, :6], y[:, :6])


def test_parameter_saving_is_one_sixth_of_the_blocks():
    pre, sas = SmallLM(CFG, "pre_ln"), SmallLM(CFG, "sas")
    d, L = CFG.d_model, CFG.n_layer
    # per block: value and projection matrices (2d²) removed; 3 scalars per head added
    assert pre.non_embedding_params() - sas.non_embedding_params() == L * (2 * d * d - 3 * 4)


def test_sas_model_trains():
    torch.manual_seed(0)
    m = SmallLM(CFG, "sas")
    seq = torch.arange(11) % 4
    x, y = seq[:-1][None].repeat(4, 1), seq[1:][None].repeat(4, 1)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    first = m(x, y)[1].item()
    for _ in range(40):
        _, loss = m(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first


def test_declaration_kinds_and_gates():
    from repro.papers.simplified_transformer_blocks import REPRO

    assert not REPRO.problems()
    kinds = {c.id: c.kind for c in REPRO.claims}
    assert kinds["fewer-parameters"] == kinds["identity-at-init"] == "check"
    match = next(c for c in REPRO.claims if c.id == "matches-pre-ln-per-step")
    assert type(match.rule).__name__ == "Equivalent"
    assert {g.metric for g in match.gates} == {
        "pre_ln_below_unigram",
        "sas_below_unigram",
        "pre_ln_lr_inside_grid",
        "sas_lr_inside_grid",
    }
    assert REPRO.config().lrs == tuple(sorted(REPRO.config().lrs))  # a grid, in order


def test_best_lr_takes_the_lowest_finite_tuning_loss():
    from repro.papers.simplified_transformer_blocks.run import best_lr

    assert best_lr({1e-3: 4.2, 2e-3: 4.0, 4e-3: float("inf")}) == 2e-3
    assert best_lr({1e-3: float("nan"), 2e-3: 5.0, 4e-3: 4.5}) == 4e-3
    assert best_lr({1e-3: float("inf")}) != best_lr({1e-3: float("inf")})  # nan: none trained
