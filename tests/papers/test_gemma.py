"""Gemma: the parameter count formula, the walk-through's component identities, causality."""

import math
from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from repro.papers.gemma import PAPER_COUNTS, REPRO
from repro.papers.gemma.model import (
    GEMMA_2B,
    GEMMA_7B,
    Gemma,
    GemmaConfig,
    RMSNorm,
    apply_rope,
    count_instance,
    param_counts,
    rope_cos_sin,
)

TINY = GemmaConfig(
    vocab_size=50, d_model=16, n_layer=2, n_head=4, n_kv_head=1, head_dim=8, ffn_hidden=64
)


@pytest.mark.parametrize("name,cfg", [("2b", GEMMA_2B), ("7b", GEMMA_7B)])
def test_published_sizes_match_table_2(name, cfg):
    assert param_counts(cfg) == PAPER_COUNTS[name]
    assert count_instance(cfg) == PAPER_COUNTS[name]


def test_other_readings_of_table_1_miss_table_2():
    # Reading "feedforward hidden dims" as the width of each of gate and up, or giving the 2B
    # model full multi-head attention, must not also match: the check has teeth.
    assert param_counts(replace(GEMMA_2B, ffn_hidden=2 * 32768))[1] != PAPER_COUNTS["2b"][1]
    assert param_counts(replace(GEMMA_2B, n_kv_head=8))[1] != PAPER_COUNTS["2b"][1]


@settings(max_examples=25, deadline=None)
@given(
    d=st.integers(1, 12),
    layers=st.integers(0, 3),
    kv=st.sampled_from([1, 2]),
    group=st.integers(1, 3),
    hd=st.sampled_from([2, 4, 6]),
    ffn=st.integers(1, 10),
)
def test_formula_equals_numel(d, layers, kv, group, hd, ffn):
    c = GemmaConfig(
        vocab_size=7,
        d_model=d,
        n_layer=layers,
        n_head=kv * group,
        n_kv_head=kv,
        head_dim=hd,
        ffn_hidden=2 * ffn,
    )
    model = Gemma(c)
    emb, non_emb = param_counts(c)
    assert sum(p.numel() for p in model.parameters()) == emb + non_emb
    assert model.embedding_params() == emb


def test_rmsnorm_one_plus_w():
    x = torch.randn(3, 5, 16, dtype=torch.float64)
    norm = RMSNorm(16).double()
    plain = x / x.pow(2).mean(-1, keepdim=True).add(1e-6).sqrt()
    torch.testing.assert_close(norm(x), plain)  # fresh norm: gain 1 + 0
    with torch.no_grad():
        norm.weight.fill_(0.5)
    torch.testing.assert_close(norm(x), 1.5 * plain)


def test_multi_query_equals_multi_head_with_shared_kv():
    torch.manual_seed(0)
    mqa = Gemma(TINY).double()
    mha = Gemma(replace(TINY, n_kv_head=TINY.n_head)).double()
    with torch.no_grad():
        for a, b in zip(mqa.blocks, mha.blocks):
            for name, p in a.named_parameters():
                q = b.get_parameter(name)
                if name in ("attn.k_proj.weight", "attn.v_proj.weight"):
                    q.copy_(p.repeat(TINY.n_head, 1))  # every head gets the one shared head
                else:
                    q.copy_(p)
        mha.embed.weight.copy_(mqa.embed.weight)
        mha.final_norm.weight.copy_(mqa.final_norm.weight)
    idx = torch.randint(0, TINY.vocab_size, (2, 11))
    torch.testing.assert_close(mqa(idx), mha(idx))
    # the fused SDPA path (enable_gqa) and the readable repeat path agree
    torch.testing.assert_close(mqa(idx), mqa(idx, manual=True))


def test_rope_scores_depend_only_on_offset():
    T, hd = 12, 8
    cos, sin = rope_cos_sin(T, hd, 10000.0, dtype=torch.float64)
    q = torch.randn(hd, dtype=torch.float64).expand(1, 1, T, hd)
    k = torch.randn(hd, dtype=torch.float64).expand(1, 1, T, hd)
    s = (apply_rope(q, cos, sin) @ apply_rope(k, cos, sin).transpose(-1, -2))[0, 0]
    for off in range(-3, 4):
        diag = torch.diagonal(s, offset=off)
        torch.testing.assert_close(diag, diag[0].expand_as(diag))
    # a rotation keeps norms
    torch.testing.assert_close(apply_rope(q, cos, sin).norm(dim=-1), q.norm(dim=-1))


def test_embedding_scaled_and_tied():
    torch.manual_seed(0)
    model = Gemma(TINY)
    seen = {}
    model.blocks[0].register_forward_pre_hook(lambda m, args: seen.setdefault("x", args[0]))
    idx = torch.randint(0, TINY.vocab_size, (1, 6))
    logits = model(idx)
    torch.testing.assert_close(seen["x"], model.embed.weight[idx] * math.sqrt(TINY.d_model))
    assert logits.shape == (1, 6, TINY.vocab_size)
    assert not any(
        p.shape == (TINY.vocab_size, TINY.d_model)
        for n, p in model.named_parameters()
        if n != "embed.weight"
    )


def test_causal():
    torch.manual_seed(0)
    model = Gemma(TINY)
    idx = torch.randint(0, TINY.vocab_size, (1, 9))
    changed = idx.clone()
    changed[0, 6] = (idx[0, 6] + 1) % TINY.vocab_size
    a, b = model(idx), model(changed)
    torch.testing.assert_close(a[:, :6], b[:, :6])
    assert not torch.allclose(a[:, 6:], b[:, 6:])


def test_declaration_kinds_and_gates():
    assert REPRO.problems() == []
    kinds = {c.id: c.kind for c in REPRO.claims}
    assert [k for k, v in kinds.items() if v == "finding"] == ["mqa-on-par-with-mha"]
    assert sum(k == "check" for k in kinds.values()) == 6
    mqa = next(c for c in REPRO.claims if c.id == "mqa-on-par-with-mha")
    assert {g.metric for g in mqa.gates} == {
        "mqa_below_unigram",
        "mha_below_unigram",
        "mqa_lr_inside_grid",
        "mha_lr_inside_grid",
    }
    assert REPRO.make_config("quick", {}).seeds == 3
    assert REPRO.make_config("full", {}).seeds == 5


@pytest.mark.parametrize("preset", ["quick", "full"])
def test_the_two_arms_have_equal_parameters(preset):
    from repro.papers.gemma.run import arm_config

    cfg = REPRO.make_config(preset, {})
    mqa, mha = arm_config(cfg, "mqa"), arm_config(cfg, "mha")
    assert (mqa.n_kv_head, mha.n_kv_head) == (1, cfg.n_head)
    assert mqa.ffn_hidden > mha.ffn_hidden == cfg.ffn_ratio * cfg.d_model
    assert sum(param_counts(mqa)) == sum(param_counts(mha))
    with torch.device("meta"):
        counts = [sum(p.numel() for p in Gemma(c).parameters()) for c in (mqa, mha)]
    assert counts[0] == counts[1]


def test_unequal_arms_are_refused():
    from repro.papers.gemma.run import arm_config

    cfg = replace(REPRO.config(), n_head=2, head_dim=8)  # saves 2·d·8: not 3·d units
    with pytest.raises(ValueError, match="whole number"):
        arm_config(cfg, "mqa")
    with pytest.raises(ValueError, match="arm 'gqa'"):
        arm_config(cfg, "gqa")
