"""BART: the noising functions against their specification, the model's shapes and masks."""

import itertools
import math

import pytest
import torch

from repro.papers.bart.model import Bart, BartConfig
from repro.papers.bart.noising import (
    document_rotation,
    infilling_statistics,
    rebuild_infilled,
    sentence_permutation,
    text_infilling,
    token_deletion,
    token_masking,
)

MASK = -1


def test_span_lengths_follow_poisson_3():
    """Chi-square goodness of fit of the span lengths to Poisson(3), fixed seed."""
    g = torch.Generator().manual_seed(0)
    tokens = torch.arange(100)
    counts = torch.zeros(9)
    for _ in range(2000):
        for _, ell in text_infilling(tokens, MASK, 0.3, 3.0, g).spans:
            counts[min(ell, 8)] += 1
    n = counts.sum()
    pmf = torch.tensor([math.exp(-3) * 3**k / math.factorial(k) for k in range(8)])
    expected = n * torch.cat([pmf, (1 - pmf.sum()).view(1)])  # last bin: 8 or more
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < 20.09  # 99th percentile of chi-square with 8 degrees of freedom
    # a planted wrong law is rejected by the same test: lengths + 1
    shifted = torch.cat([torch.zeros(1), counts[:-1]])
    shifted[-1] += counts[-1]
    assert ((shifted - expected) ** 2 / expected).sum().item() > 1000


def test_masked_fraction_and_mean_span_length():
    s = infilling_statistics(3000, 64, 0.3, 3.0, torch.Generator().manual_seed(1))
    assert abs(s["mask_fraction"] - 0.3) < 0.01
    assert abs(s["mean_span_length"] - 3.0) < 0.1
    assert s["zero_length_share"] > 0.03  # P(L = 0) = e^-3 ≈ 0.05: insertions happen
    assert s["one_mask_per_span"]
    # other settings move the measurement: λ = 5 and 15% hidden
    s = infilling_statistics(3000, 64, 0.15, 5.0, torch.Generator().manual_seed(1))
    assert abs(s["mask_fraction"] - 0.15) < 0.01 and abs(s["mean_span_length"] - 5) < 0.2


def test_each_span_is_one_mask_token():
    g = torch.Generator().manual_seed(2)
    tokens = torch.arange(10, 74)
    for _ in range(200):
        z = text_infilling(tokens, MASK, 0.3, 3.0, g)
        assert int((z.source == MASK).sum()) == len(z.spans)
        assert z.source.tolist() == rebuild_infilled(tokens, z.spans, MASK)
        assert len(z.source) == len(tokens) - int(z.hidden.sum()) + len(z.spans)
        # the visible tokens are the unhidden ones, in order
        assert z.source[z.source != MASK].tolist() == tokens[~z.hidden].tolist()


def test_rebuild_catches_a_span_shown_as_several_masks():
    tokens = torch.arange(8)
    assert rebuild_infilled(tokens, [(2, 3), (6, 0)], MASK) == [0, 1, MASK, 5, MASK, 6, 7]
    assert rebuild_infilled(tokens, [(2, 3)], MASK) != [0, 1, MASK, MASK, MASK, 5, 6, 7]


def test_masking_deletion_permutation_rotation():
    g = torch.Generator().manual_seed(3)
    tokens = torch.arange(1, 101)
    z = token_masking(tokens, MASK, 0.3, g)
    assert len(z.source) == 100 and int((z.source == MASK).sum()) == int(z.hidden.sum()) == 30
    assert (z.source[~z.hidden] == tokens[~z.hidden]).all()
    z = token_deletion(tokens, 0.3, g)
    assert len(z.source) == 70 and int(z.hidden.sum()) == 30
    assert z.source.tolist() == tokens[~z.hidden].tolist()  # order kept, hidden ones gone
    ends = {10, 25, 60}
    z = sentence_permutation(tokens, ends, g)
    assert sorted(z.source.tolist()) == tokens.tolist()
    pieces = [list(range(1, 11)), list(range(11, 26)), list(range(26, 61)), list(range(61, 101))]
    orders = [sum((pieces[i] for i in order), []) for order in itertools.permutations(range(4))]
    assert z.source.tolist() in orders and z.source.tolist() != tokens.tolist()
    z = document_rotation(tokens, g)
    start = tokens.tolist().index(int(z.source[0]))
    assert z.source.tolist() == tokens.tolist()[start:] + tokens.tolist()[:start]


def _tiny(pre_ln=False):
    torch.manual_seed(0)
    return Bart(
        BartConfig(
            vocab_size=50, max_len=16, d_model=16, n_head=2, n_layer=2, d_ff=32, pre_ln=pre_ln
        )
    ).eval()


def test_shapes_and_tied_embeddings():
    for pre in (False, True):
        m = _tiny(pre)
        src = torch.randint(1, 50, (3, 9))
        dec = torch.randint(1, 50, (3, 7))
        assert m(src, dec).shape == (3, 7, 50)
        assert m.generate(src, bos_id=2, length=5).shape == (3, 5)
    # one (vocab, d) matrix serves as both embeddings and the output projection
    assert sum(1 for p in m.parameters() if p.shape == (50, 16)) == 1


def test_decoder_is_causal_and_padding_is_ignored():
    m = _tiny()
    src = torch.randint(1, 50, (2, 9))
    dec = torch.randint(1, 50, (2, 8))
    out = m(src, dec)
    later = dec.clone()
    later[:, 5:] = torch.randint(1, 50, (2, 3))
    out2 = m(src, later)
    assert torch.allclose(out[:, :5], out2[:, :5], atol=1e-6)
    assert not torch.allclose(out[:, 5:], out2[:, 5:], atol=1e-3)
    # extra [PAD] (id 0) after the source changes nothing
    padded = torch.cat([src, torch.zeros(2, 4, dtype=torch.long)], dim=1)
    assert torch.allclose(m(padded, dec), out, atol=1e-5)
    # but the source itself matters (cross-attention is wired)
    other = src.clone()
    other[:, 0] = (other[:, 0] % 49) + 1
    assert not torch.allclose(m(other, dec), out, atol=1e-4)


def test_run_reports_per_seed_findings_and_paired_ratio(tmp_path):
    """A tiny run with both objectives and fine-tuning: reconstruction findings per seed, the
    infilling/masking comparison as a paired ratio with both arms' learned gates."""
    from dataclasses import replace

    from repro.context import RunContext
    from repro.papers.bart import REPRO
    from repro.papers.bart.run import main

    cfg = replace(
        REPRO.config(),
        noise_windows=20,
        steps=2,
        batch=4,
        objectives=("infilling", "masking"),
        finetune_steps=2,
        eval_windows=8,
        seeds=2,
        max_docs=20,
    )
    ctx = RunContext(out_dir=tmp_path, show_progress=False)
    main(cfg, ctx)
    m = ctx.metrics
    assert len(m["recon_loss_over_copy_oracle"]) == 2
    ppl = m["continuation_perplexity"]
    assert m["ppl_ratio_infilling_over_masking"][0] == pytest.approx(
        ppl["infilling"][0] / ppl["masking"][0]
    )
    assert (
        len(m["infilling_finetuned_below_unigram"])
        == len(m["masking_finetuned_below_unigram"])
        == 2
    )
    # each denoiser's learned gate: the unigram floor of the targets minus its held-out loss
    for k in ("infilling", "masking"):
        losses = [r["loss"] for r in m["objectives"][k]]
        assert m[f"{k}_denoiser_below_unigram"] == pytest.approx(
            [m["reconstruction_unigram_nats"] - x for x in losses]
        )
    # the pretraining gate: no-pretraining loss minus the weaker pretrained arm's, per seed
    none = [r["continuation_loss"] for r in m["objectives"]["none"]]
    worst = [
        max(a["continuation_loss"], b["continuation_loss"])
        for a, b in zip(m["objectives"]["infilling"], m["objectives"]["masking"])
    ]
    assert m["pretraining_gain"] == pytest.approx([n - w for n, w in zip(none, worst)])
    kinds = {c.id: c.kind for c in REPRO.claims}
    assert kinds["infilling-mask-fraction"] == kinds["one-mask-per-span"] == "check"
    assert kinds["infilling-beats-masking"] == "finding"
    # the headline is judged in the quick preset too (3 seeds), not only in full
    assert REPRO.claims[3].id == "infilling-beats-masking"
    assert REPRO.config().finetune_steps > 0 and "masking" in REPRO.config().objectives


def test_headline_gates_decide():
    """A failed gate makes the headline inconclusive; passing gates let the rule decide."""
    from repro.papers.bart import REPRO

    claim = next(c for c in REPRO.claims if c.id == "infilling-beats-masking")
    ok = {
        "ppl_ratio_infilling_over_masking": [0.95, 0.96, 0.94],
        "infilling_finetuned_below_unigram": [0.8] * 3,
        "masking_finetuned_below_unigram": [0.8] * 3,
        "infilling_denoiser_below_unigram": [2.0] * 3,
        "masking_denoiser_below_unigram": [2.0] * 3,
        "infilling_visible_accuracy": [0.6] * 3,
        "masking_visible_accuracy": [0.6] * 3,
        "pretraining_gain": [0.5] * 3,
    }
    assert claim.evaluate(ok, {}, "quick")["verdict"] == "reproduced"
    worse = {**ok, "ppl_ratio_infilling_over_masking": [1.01, 1.02, 1.0]}
    assert claim.evaluate(worse, {}, "quick")["verdict"] == "not reproduced"
    no_copy = {**ok, "masking_visible_accuracy": [0.6, 0.12, 0.6]}
    row = claim.evaluate(no_copy, {}, "quick")
    assert row["verdict"] == "inconclusive" and "reads its source" in row["reason"]
    # the full preset asks 1.0 nats of each learned arm
    assert claim.evaluate(ok, {}, "full")["verdict"] == "inconclusive"
