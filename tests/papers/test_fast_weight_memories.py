"""Fast weights vs linear attention: the forms agree, a wrong form is caught, state sizes."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from repro.papers.fast_weight_memories.fast_weights import (
    FastWeightDecoder,
    SoftmaxKVDecoder,
    decode,
    dpfp,
    fast_weight_recurrent,
    feature_map,
    linear_attention_parallel,
)


def _qkv(T, d=4, dv=3, seed=0, scale=1.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    q, k = (scale * torch.randn(2, 2, T, d, generator=g, dtype=dtype) for _ in range(2))
    v = scale * torch.randn(2, 2, T, dv, generator=g, dtype=dtype)
    return q, k, v


@settings(max_examples=40, deadline=None)
@given(
    T=st.integers(1, 40),
    seed=st.integers(0, 10_000),
    scale=st.sampled_from([1e-2, 1.0, 30.0]),
    name=st.sampled_from(["elu1", "dpfp1", "dpfp3"]),
    normalize=st.booleans(),
)
def test_recurrent_equals_parallel(T, seed, scale, name, normalize):
    if normalize and name != "elu1":
        normalize = False  # DPFP features can be all zero: no safe denominator
    q, k, v = _qkv(T, seed=seed, scale=scale)
    phi = feature_map(name)
    a = fast_weight_recurrent(q, k, v, phi, normalize)
    b = linear_attention_parallel(q, k, v, phi, normalize)
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12 * b.abs().max().item())


def test_third_form_cumulative_sum_agrees():
    """An independent form: y_t = (Σ_{τ≤t} v_τ φ(k_τ)ᵀ) φ(q_t) via cumsum of outer products."""
    q, k, v = _qkv(9)
    phi = feature_map("dpfp2")
    W = torch.cumsum(v[..., :, None] * phi(k)[..., None, :], dim=2)  # (B, H, T, d_v, d_φ)
    y = (W @ phi(q)[..., None]).squeeze(-1)
    torch.testing.assert_close(linear_attention_parallel(q, k, v, phi), y)


def test_dropping_the_mask_is_detected():
    q, k, v = _qkv(16)
    phi = feature_map("elu1")
    a = fast_weight_recurrent(q, k, v, phi)
    b = linear_attention_parallel(q, k, v, phi, causal=False)
    assert (a - b).norm() / b.norm() > 0.1
    # ... and only the last step, which sees the whole sequence either way, agrees
    torch.testing.assert_close(a[:, :, -1], b[:, :, -1])


def test_dpfp_shape_and_sign():
    x = torch.randn(5, 7)
    for nu in (1, 2, 3):
        f = dpfp(x, nu)
        assert f.shape == (5, 2 * 7 * nu)
        assert (f >= 0).all()
    with pytest.raises(ValueError):
        feature_map("softmax")


def test_decoders_match_parallel_and_state_sizes():
    torch.manual_seed(0)
    d, H, T = 8, 2, 20
    xs = torch.randn(1, T, d)
    fw, kv = FastWeightDecoder(d, H), SoftmaxKVDecoder(d, H)
    kv.qkv.weight.data.copy_(fw.qkv.weight.data)
    y_fw, s_fw = decode(fw, xs, {1, 5, 20})
    y_kv, s_kv = decode(kv, xs, {1, 5, 20})
    with torch.no_grad():
        q, k, v = (t.view(1, T, H, -1).transpose(1, 2) for t in fw.qkv(xs).chunk(3, dim=-1))
        ref_fw = linear_attention_parallel(q, k, v, feature_map("elu1"), normalize=True)
        ref_kv = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(y_fw, ref_fw.transpose(1, 2).reshape(1, T, d))
    torch.testing.assert_close(y_kv, ref_kv.transpose(1, 2).reshape(1, T, d))
    assert s_fw[1] == s_fw[5] == s_fw[20] == 4 * (H * (d // H) ** 2 + d)  # W + z, float32
    assert s_kv[20] == 20 * s_kv[1] == 20 * 4 * 2 * d  # K + V, float32
