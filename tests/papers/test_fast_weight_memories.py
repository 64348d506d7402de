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


# --------------------------------------------------------------------------- retrieval task
from repro.papers.fast_weight_memories.retrieval import (  # noqa: E402
    FastWeightRetriever,
    delta_write,
    sample_batch,
    sum_write,
    train_retriever,
)


def test_sample_batch_targets_are_the_last_write():
    g = torch.Generator().manual_seed(3)
    keys, values, queries, target = sample_batch(5, 7, 4, g, repeats=3)
    assert keys.shape == values.shape == (4, 15)
    for b in range(4):
        assert sorted(keys[b].tolist()) == sorted(list(range(5)) * 3)
        for j in range(5):
            last = max(t for t in range(15) if keys[b, t] == j)
            assert target[b, j] == values[b, last]
    assert (queries == torch.arange(5)).all()


def test_writes_on_orthonormal_and_repeated_keys():
    # orthonormal keys: both rules store every pair exactly (the capacity regime N <= d_key)
    k = torch.eye(4)[None, [2, 0, 3, 1]]  # (1, 4, 4)
    v = torch.randn(1, 4, 3)
    ones = torch.ones(1, 4, 1)
    for W in (sum_write(k, v), delta_write(k, v, ones)):
        torch.testing.assert_close((W[0] @ k[0].T).T, v[0])
    # the same key written twice: the sum rule returns the sum, the delta rule (β = 1) the
    # latest value, and β = 0 writes nothing
    k2 = torch.eye(4)[None, [1, 1]]
    v2 = torch.randn(1, 2, 3)
    torch.testing.assert_close(sum_write(k2, v2)[0, :, 1], v2[0, 0] + v2[0, 1])
    torch.testing.assert_close(delta_write(k2, v2, torch.ones(1, 2, 1))[0, :, 1], v2[0, 1])
    assert delta_write(k2, v2, torch.zeros(1, 2, 1)).abs().max() == 0


def test_sum_write_is_unnormalised_linear_attention_at_the_last_step():
    q, k, v = _qkv(6, d=4, dv=3)
    q, k, v = (t[:, 0].float() for t in (q, k, v))  # (B, T, ·)
    W = sum_write(k, v)
    y = linear_attention_parallel(q[:, None], k[:, None], v[:, None], lambda x: x)[:, 0, -1]
    torch.testing.assert_close((W @ q[:, -1, :, None]).squeeze(-1), y)


def test_same_seed_gives_both_rules_the_same_slow_net_and_bad_rule_is_refused():
    torch.manual_seed(0)
    a = FastWeightRetriever(4, 5, 8, 4, 6, "sum")
    torch.manual_seed(0)
    b = FastWeightRetriever(4, 5, 8, 4, 6, "delta")
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and torch.equal(pa, pb)
    with pytest.raises(ValueError, match="update rule"):
        FastWeightRetriever(4, 5, 8, 4, 6, "hebb")


def test_delta_rule_learns_to_overwrite_and_sum_rule_cannot():
    kw = dict(n_values=8, d_model=16, d_key=4, d_value=16, steps=150, batch=16, lr=1e-2)
    delta = train_retriever("delta", 3, 0, eval_sequences=128, repeats=2, **kw)
    summ = train_retriever("sum", 3, 0, eval_sequences=128, repeats=2, **kw)
    assert delta["loss"] < 0.2 and delta["accuracy"] > 0.95
    # the sum rule cannot tell the newer of two values apart: at best ln 2 above perfect
    assert summ["loss"] > 0.6
