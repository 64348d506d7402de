"""Post-LN / Pre-LN models: the block equations, the gradient probe, the slope helper."""

import math

import torch

from repro.papers.on_layer_normalization.model import LM, Block, layer_grad_norms
from repro.papers.on_layer_normalization.run import loglog_slope


def test_block_equations():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 16)
    post, pre = Block(16, 2, 32, "post"), Block(16, 2, 32, "pre")
    pre.load_state_dict(post.state_dict())
    h = post.ln1(x + post.attn(x))
    torch.testing.assert_close(post(x), post.ln2(h + post.ffn(h)))
    h = x + pre.attn(pre.ln1(x))
    torch.testing.assert_close(pre(x), h + pre.ffn(pre.ln2(h)))
    # Post-LN outputs are normalised; Pre-LN outputs are not
    assert post(x).std(-1).sub(1).abs().max() < 0.05
    assert pre(x).std(-1).sub(1).abs().max() > 0.05


def test_lm_is_causal_and_has_final_norm_only_in_pre_ln():
    torch.manual_seed(0)
    for norm in ("post", "pre"):
        m = LM(50, 16, 2, 2, 12, norm)
        x = torch.randint(0, 50, (1, 12))
        x2 = x.clone()
        x2[0, 8:] = (x2[0, 8:] + 1) % 50
        torch.testing.assert_close(m(x)[:, :8], m(x2)[:, :8])
        assert isinstance(m.ln_f, torch.nn.LayerNorm) == (norm == "pre")


def test_gradient_probe_matches_autograd():
    torch.manual_seed(0)
    m = LM(40, 16, 3, 2, 8, "post")
    x, y = torch.randint(0, 40, (2, 8)), torch.randint(0, 40, (2, 8))
    norms = layer_grad_norms(m, [(x, y)])
    m.zero_grad()
    m(x, y).backward()
    for i, b in enumerate(m.blocks):
        assert math.isclose(norms["w2"][i], b.w2.weight.grad.norm().item(), rel_tol=1e-6)
        assert math.isclose(norms["w1"][i], b.w1.weight.grad.norm().item(), rel_tol=1e-6)


def test_post_ln_last_layer_gradient_exceeds_pre_ln_for_deep_models():
    """Theorem 1's direction at a tiny size: with 16 layers the Pre-LN last-layer gradient is
    smaller than the Post-LN one (the 1/√L factor), averaged over a few initialisations."""
    x = torch.randint(0, 64, (4, 16), generator=torch.Generator().manual_seed(0))
    y = torch.roll(x, -1, dims=1)
    last = {}
    for norm in ("post", "pre"):
        total = 0.0
        for s in range(3):
            torch.manual_seed(s)
            total += layer_grad_norms(LM(64, 32, 16, 2, 16, norm), [(x, y)])["w2"][-1]
        last[norm] = total
    assert last["post"] > 1.5 * last["pre"]


def test_loglog_slope():
    xs = [6, 12, 24]
    assert math.isclose(loglog_slope(xs, [x**-0.5 for x in xs]), -0.5, abs_tol=1e-12)
    assert math.isclose(loglog_slope(xs, [3.0, 3.0, 3.0]), 0.0, abs_tol=1e-12)
