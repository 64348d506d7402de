"""LoRA: the layer's two forms (factored and merged) agree, it starts at the pretrained model,
only A and B train, merging restores the plain architecture, and peft agrees on the forward
pass and over training steps."""

import copy

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from repro.common.tinylm import LMConfig, TinyLM
from repro.papers.lora import REPRO
from repro.papers.lora.lora import LoRALinear, add_lora, merge_lora, trainable_params
from repro.papers.lora.run import FICTION, choose_lr, peft_check, peft_training_check


def _randomise(layer: LoRALinear, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in list(layer.A) + list(layer.B):
            p.copy_(torch.randn(p.shape, generator=g))


@settings(max_examples=25, deadline=None)
@given(
    d_in=st.integers(1, 24),
    part=st.integers(1, 8),
    parts=st.sampled_from([1, 3]),
    r=st.integers(1, 6),
    seed=st.integers(0, 1000),
)
def test_factored_forward_equals_merged_weight(d_in, part, parts, r, seed):
    adapt = (0,) if parts == 1 else (0, 2)
    base = torch.nn.Linear(d_in, part * parts).double()
    layer = LoRALinear(base, r=r, alpha=4.0, parts=parts, adapt=adapt).double()
    _randomise(layer, seed)
    x = torch.randn(3, 5, d_in, dtype=torch.float64)
    expect = F.linear(x, base.weight + layer.delta_weight(), base.bias)
    torch.testing.assert_close(layer(x), expect)
    torch.testing.assert_close(layer.merged()(x), expect)
    if parts == 3:  # the middle block (W_k) is untouched
        torch.testing.assert_close(layer(x)[..., part : 2 * part], base(x)[..., part : 2 * part])


def test_starts_at_the_pretrained_model_and_trains_only_a_and_b():
    cfg = LMConfig(vocab_size=40, seq_len=8, d_model=24, n_layer=2, n_head=2)
    torch.manual_seed(0)
    base = TinyLM(cfg)
    model = add_lora(copy.deepcopy(base), r=2, alpha=8.0)
    x = torch.randint(0, 40, (2, 8))
    torch.testing.assert_close(model(x), base(x))  # B = 0: ΔW = 0
    # two adapted blocks (W_q, W_v) per layer, each r·(d_in + d_out)
    assert trainable_params(model) == cfg.n_layer * 2 * 2 * (24 + 24)
    _, loss = model(x, x)
    loss.backward()
    for name, p in model.named_parameters():
        assert (p.grad is not None) == (".A." in name or ".B." in name), name


def test_merge_restores_the_plain_architecture():
    cfg = LMConfig(vocab_size=40, seq_len=8, d_model=24, n_layer=2, n_head=2)
    base = TinyLM(cfg)
    model = add_lora(copy.deepcopy(base), r=3, alpha=8.0)
    for m in model.modules():
        if isinstance(m, LoRALinear):
            _randomise(m, 1)
    x = torch.randint(0, 40, (2, 8))
    with torch.no_grad():
        before = model(x)
        merged = merge_lora(copy.deepcopy(model))
        after = merged(x)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
    assert not any(isinstance(m, LoRALinear) for m in merged.modules())
    assert [p.shape for p in merged.parameters()] == [p.shape for p in base.parameters()]
    assert not torch.allclose(after, base(x))  # the update was really merged in


def test_peft_gives_the_same_outputs():
    pytest.importorskip("peft")
    assert peft_check(0) < 1e-6


def test_a_wrong_scale_would_be_caught_by_the_peft_check():
    """Guard on the check itself: our layer with α/r replaced by α differs from peft's."""
    pytest.importorskip("peft")
    from peft import LoraConfig, get_peft_model

    base = torch.nn.Sequential()
    base.add_module("proj", torch.nn.Linear(8, 8))
    ours = LoRALinear(copy.deepcopy(base.proj), r=4, alpha=8.0)
    _randomise(ours, 2)
    ours.scale = 8.0  # the bug: forgetting to divide by r
    peer = get_peft_model(
        copy.deepcopy(base), LoraConfig(r=4, lora_alpha=8.0, target_modules=["proj"])
    )
    layer = peer.base_model.model.proj
    with torch.no_grad():
        layer.lora_A["default"].weight.copy_(ours.A[0])
        layer.lora_B["default"].weight.copy_(ours.B[0])
    x = torch.randn(3, 8)
    assert (ours(x) - peer(x)).abs().max() > 1e-2


def test_peft_trains_the_same_and_the_check_can_fail():
    """Same model, init and batches: peft and ours give the same losses and A, B over steps
    that really move the weights; our layers with α in place of α/r are caught."""
    pytest.importorskip("peft")
    same = peft_training_check(0, steps=4)
    assert same["loss_max_rel_diff"] < 1e-5 and same["weight_max_rel_diff"] < 1e-5
    assert same["a_update_rel_size"] > 1e-3  # A really moved: the agreement is not vacuous
    assert len(same["losses_ours"]) == 4
    wrong = peft_training_check(0, steps=4, scale=8.0)  # the bug: forgetting to divide by r
    assert max(wrong["loss_max_rel_diff"], wrong["weight_max_rel_diff"]) > 1e-3


def test_choose_lr_picks_the_lowest_mean_dev_loss_and_flags_the_edge():
    best, mean, inside = choose_lr({1e-3: [4.0, 4.2], 1e-2: [3.9, 4.0], 1e-1: [4.5, 4.4]})
    assert best == 1e-2 and inside and mean[1e-3] == pytest.approx(4.1)
    best, _, inside = choose_lr({1e-3: [3.0], 1e-2: [3.5], 1e-1: [4.0]})
    assert best == 1e-3 and not inside
    with pytest.raises(ValueError):
        choose_lr({})


def test_fiction_genres_exist_in_the_corpus():
    from repro.common.data import load_brown

    genres = {d.genre for d in load_brown()}
    assert FICTION <= genres and len(genres - FICTION) == 9


def test_declaration_is_consistent():
    assert REPRO.problems() == []


def test_run_reports_per_seed_findings_and_first_seed_checks(tmp_path):
    """A tiny run: findings get one value per seed, the checks one value; the quality claims
    are equivalence claims; every gate's metric is there."""
    from dataclasses import replace

    from repro.claims import Equivalent
    from repro.context import RunContext
    from repro.papers.lora.run import main

    cfg = replace(
        REPRO.config(),
        d_model=32,
        pretrain_steps=4,
        finetune_steps=2,
        lrs=(1e-3, 1e-2, 1e-1),
        eval_batches=1,
        seeds=2,
        latency_rounds=1,
        latency_iters=1,
        peft_steps=2,
    )
    ctx = RunContext(out_dir=tmp_path, show_progress=False)
    main(cfg, ctx)
    m = ctx.metrics
    assert len(m["claim_rank_shortfall"]) == 2 and len(m["rank1_shortfall_vs_claim_rank"]) == 2
    assert isinstance(m["claim_rank_trainable_fraction"], float)
    assert set(m["dev_loss_by_lr"]) == {"full", "lora1", "lora4"}
    assert all(len(v) == 3 for v in m["dev_loss_by_lr"].values())
    by_id = {c.id: c for c in REPRO.claims}
    assert isinstance(by_id["lora-within-margin"].rule, Equivalent)
    assert isinstance(by_id["rank-1-suffices"].rule, Equivalent)
    assert by_id["merged-no-latency"].verify_rtol is None
    for claim in REPRO.claims:
        for gate in claim.gates:
            value = m[gate.metric]
            assert isinstance(value, bool) or len(value) == 2, gate.metric


def test_a_grid_of_fewer_than_three_rates_is_refused(tmp_path):
    from dataclasses import replace

    from repro.context import RunContext
    from repro.papers.lora.run import main

    cfg = replace(REPRO.config(), lrs=(1e-3, 1e-2))
    with pytest.raises(ValueError, match="grid of ≥ 3"):
        main(cfg, RunContext(out_dir=tmp_path, show_progress=False))
