"""Multi-token prediction: head targets, the n = 1 case, and sizes."""

import torch
import torch.nn.functional as F

from repro.common.tinylm import LMConfig, TinyLM
from repro.papers.multi_token_prediction.model import MultiTokenLM

CFG = LMConfig(vocab_size=40, seq_len=8, d_model=16, n_layer=3, n_head=2, bias=False)


def test_n1_is_an_ordinary_next_token_model():
    torch.manual_seed(0)
    m = MultiTokenLM(CFG, 1)
    w = torch.randint(0, 40, (3, 9))
    loss, per_head = m.multi_token_loss(w)
    _, ref = m(w[:, :8], w[:, 1:9])
    torch.testing.assert_close(loss, ref)
    # same parameter count as a TinyLM of the same depth (tied embeddings, no biases)
    assert sum(p.numel() for p in m.parameters()) == sum(
        p.numel() for p in TinyLM(CFG).parameters()
    )


def test_head_i_is_scored_against_the_token_i_ahead():
    torch.manual_seed(0)
    m = MultiTokenLM(CFG, 3)
    w = torch.randint(0, 40, (2, 11))
    loss, per_head = m.multi_token_loss(w)
    h = m.trunk_out(w[:, :8])
    for i in range(3):
        logits = m.head_logits(h, i)
        ref = F.cross_entropy(logits.reshape(-1, 40), w[:, i + 1 : i + 9].reshape(-1))
        assert abs(ref.item() - per_head[i]) < 1e-5
    assert abs(loss.item() - sum(per_head)) < 1e-4


def test_extra_heads_do_not_change_the_inference_model_size():
    sizes = {n: MultiTokenLM(CFG, n).next_token_params() for n in (1, 2, 4)}
    assert len(set(sizes.values())) == 1


def test_only_head_one_feeds_next_token_prediction():
    torch.manual_seed(0)
    m = MultiTokenLM(CFG, 4)
    x = torch.randint(0, 40, (2, 8))
    before = m(x)
    with torch.no_grad():
        for p in m.heads[1:].parameters():
            p.add_(1.0)
    torch.testing.assert_close(m(x), before)


def test_every_n_starts_from_the_same_next_token_model():
    """Paired by seed: n = 1 and n = 4 built after the same seed share the initial embeddings,
    trunk, head 1 and unembedding (the extra heads draw their weights after those)."""
    from dataclasses import replace

    for cfg in (CFG, replace(CFG, tie_embeddings=False)):
        torch.manual_seed(5)
        one = dict(MultiTokenLM(cfg, 1).named_parameters())
        torch.manual_seed(5)
        four = dict(MultiTokenLM(cfg, 4).named_parameters())
        assert set(one) < set(four)
        for name, p in one.items():
            torch.testing.assert_close(four[name], p, rtol=0, atol=0)
        torch.manual_seed(6)
        other = dict(MultiTokenLM(cfg, 1).named_parameters())
        assert not torch.equal(other["trunk.0.attn.qkv.weight"], one["trunk.0.attn.qkv.weight"])


def test_untied_unembedding_is_its_own_matrix():
    from dataclasses import replace

    torch.manual_seed(0)
    untied = MultiTokenLM(replace(CFG, tie_embeddings=False), 2)
    tied = MultiTokenLM(CFG, 2)
    extra = sum(p.numel() for p in untied.parameters()) - sum(p.numel() for p in tied.parameters())
    assert extra == CFG.vocab_size * CFG.d_model
    h = untied.trunk_out(torch.randint(0, 40, (1, 8)))
    with torch.no_grad():
        untied.tok.weight.zero_()  # the output no longer reads the input embedding
    torch.testing.assert_close(
        untied.head_logits(h, 1), untied.ln_f(untied.heads[1](h)) @ untied.unembed.weight.T
    )


def test_future_heads_learn_a_planted_pattern():
    """On a period-5 sequence, every future token is predictable; all four heads learn it."""
    torch.manual_seed(0)
    m = MultiTokenLM(CFG, 4)
    seq = torch.arange(12) % 5
    w = seq[None].repeat(4, 1)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    for _ in range(200):  # a plateau at ln 5 (the period's tokens) lasts ~150 steps
        loss, per_head = m.multi_token_loss(w)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert max(per_head) < 0.3


def test_run_reports_paired_per_seed_metrics_and_gates(tmp_path):
    """A tiny run: each finding's metric is one paired difference per seed, and every gate's
    metric is there."""
    from dataclasses import replace

    from repro.context import RunContext
    from repro.papers.multi_token_prediction import REPRO
    from repro.papers.multi_token_prediction.run import main

    cfg = replace(REPRO.config(), steps=2, widths=(16, 32), eval_batches=2, seeds=2, max_docs=20)
    ctx = RunContext(out_dir=tmp_path, show_progress=False)
    main(cfg, ctx)
    m = ctx.metrics
    v = m["val_loss"]
    assert m["n4_minus_n1_smallest"] == [v["16"]["4"][i] - v["16"]["1"][i] for i in range(2)]
    assert len(m["effect_change_with_size"]) == 2
    for claim in REPRO.claims:
        if claim.kind == "check":
            continue
        assert claim.gates
        for gate in claim.gates:
            assert len(m[gate.metric]) == 2
    # self-speculative decoding with the 4-head model of the largest width, every seed
    assert len(m["spec_tokens_per_pass"]) == 2
    assert all(1.0 <= t <= 4.0 for t in m["spec_tokens_per_pass"])
    assert m["spec_output_equals_greedy"] == [1.0, 1.0]


def test_speculative_decoding_returns_the_greedy_output():
    """Drafts from the extra heads are only kept when head 1 agrees, so the output is the
    next-token model's greedy output whatever the heads guess (here: untrained heads)."""
    from repro.papers.multi_token_prediction.speculative import greedy, speculative

    torch.manual_seed(3)
    m = MultiTokenLM(CFG, 4).eval()
    for prompt in ([1, 2, 3], [7], [5, 5, 5, 5]):
        n_new = CFG.seq_len - len(prompt)
        out, passes = speculative(m, prompt, n_new, k=4)
        assert out == greedy(m, prompt, n_new)
        assert n_new / 4 <= passes <= n_new


def test_one_head_speculation_is_plain_greedy_pass_count():
    from repro.papers.multi_token_prediction.speculative import speculative

    torch.manual_seed(0)
    m = MultiTokenLM(CFG, 4).eval()
    _, passes = speculative(m, [1, 2], 6, k=1)
    assert passes == 6


def test_speculation_accepts_every_draft_when_heads_are_right():
    """After learning a period-5 sequence every head's draft is right: pass 1 drafts 4
    tokens, pass 2 verifies them and drafts 4 more, pass 3 verifies the 2 still needed."""
    from repro.papers.multi_token_prediction.speculative import greedy, speculative

    torch.manual_seed(0)
    m = MultiTokenLM(CFG, 4)
    w = (torch.arange(12) % 5)[None].repeat(4, 1)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    for _ in range(250):
        loss, _ = m.multi_token_loss(w)
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    out, passes = speculative(m, [0, 1], 6, k=4)
    assert out == greedy(m, [0, 1], 6) == [2, 3, 4, 0, 1, 2]
    assert passes == 3


def test_speculation_rejects_bad_arguments():
    import pytest

    from repro.papers.multi_token_prediction.speculative import speculative

    m = MultiTokenLM(CFG, 2)
    with pytest.raises(ValueError, match="heads"):
        speculative(m, [1], 2, k=3)
    with pytest.raises(ValueError, match="positions"):
        speculative(m, [1, 2, 3], 6, k=2)
