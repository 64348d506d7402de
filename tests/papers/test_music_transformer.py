"""Relative attention: the skewed forms equal the naive one, wrong indexing is caught, and the
memory probe sees the L×L×D tensor of the naive form."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from repro.papers.music_transformer.relative import (
    rel_logits_naive,
    rel_logits_skew,
    relative_attention,
    relative_index,
    skew,
    skew_view,
)
from repro.papers.music_transformer.run import fit_exponents, peak_bytes


def _inputs(B, H, L, D, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (scale * torch.randn(B, H, L, D, generator=g, dtype=torch.float64) for _ in range(3))
    return q, k, v, scale * torch.randn(H, L, D, generator=g, dtype=torch.float64)


@settings(max_examples=20, deadline=None)
@given(
    L=st.integers(1, 40),
    D=st.integers(1, 9),
    H=st.integers(1, 3),
    seed=st.integers(0, 10_000),
    scale=st.sampled_from([1e-3, 1.0, 20.0]),
)
def test_skew_equals_naive(L, D, H, seed, scale):
    q, k, v, e = _inputs(2, H, L, D, seed, scale)
    causal = torch.ones(L, L, dtype=torch.bool).tril()
    ref = rel_logits_naive(q, e)
    for view in (False, True):
        got = rel_logits_skew(q, e, view=view)
        torch.testing.assert_close(got[..., causal], ref[..., causal], rtol=1e-12, atol=1e-12)
    out = relative_attention(q, k, v, e, "naive")
    for method in ("skew", "view"):
        torch.testing.assert_close(relative_attention(q, k, v, e, method), out)


def test_naive_matches_explicit_loop():
    q, _, _, e = _inputs(1, 2, 6, 3, seed=1)
    L = 6
    s = torch.zeros(1, 2, L, L, dtype=torch.float64)
    for h in range(2):
        for i in range(L):
            for j in range(i + 1):
                s[0, h, i, j] = q[0, h, i] @ e[h, L - 1 + (j - i)]  # row L-1 is distance 0
    causal = torch.ones(L, L, dtype=torch.bool).tril()
    torch.testing.assert_close(rel_logits_naive(q, e)[..., causal], s[..., causal])


def test_skew_of_distance_table():
    # m[i, r] = r: after the skew, entry (i, j) must be the table row for distance j − i
    L = 5
    m = torch.arange(L, dtype=torch.float64).expand(L, L).clone()
    causal = torch.ones(L, L, dtype=torch.bool).tril()
    want = relative_index(L).double()
    assert torch.equal(skew(m)[causal], want[causal])
    assert torch.equal(skew_view(m)[causal], want[causal])


def test_wrong_skew_is_caught():
    # dropping the last row instead of the first shifts every distance by one
    q, _, _, e = _inputs(1, 1, 8, 4, seed=3)
    m = q @ e.transpose(-2, -1).unsqueeze(0)
    bad = torch.nn.functional.pad(m, (1, 0)).reshape(1, 1, 9, 8)[..., :-1, :]
    causal = torch.ones(8, 8, dtype=torch.bool).tril()
    assert not torch.allclose(bad[..., causal], rel_logits_naive(q, e)[..., causal])


def test_skew_view_is_a_view():
    m = torch.randn(2, 3, 7, 7)
    s = skew_view(m)
    assert s.untyped_storage().data_ptr() == m.untyped_storage().data_ptr()


def test_peak_bytes_sees_the_big_tensor():
    L, D = 64, 32
    q, e = torch.randn(1, 1, L, D), torch.randn(1, L, D)
    naive = peak_bytes(rel_logits_naive, q, e)
    skewed = peak_bytes(rel_logits_skew, q, e)
    assert naive >= 4 * L * L * D  # R alone is L·L·D float32 values
    assert skewed < 4 * L * L * 3  # a couple of L×L matrices, nothing with D in it
    assert peak_bytes(torch.zeros, 1000) >= 4000


def test_fit_exponents_recovers_planted_powers():
    rows = [{"L": L, "D": D, "x": 3.0 * L**2 * D**0.5} for L in (8, 16, 64) for D in (2, 8)]
    b, c = fit_exponents(rows, "x")
    assert abs(b - 2) < 1e-9 and abs(c - 0.5) < 1e-9
