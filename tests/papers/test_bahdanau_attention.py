"""Bahdanau attention: data, parameter matching, alignment maths, padding, decoding."""

import torch

from repro.common import param_count
from repro.papers.bahdanau_attention import Config
from repro.papers.bahdanau_attention.model import Seq2Seq
from repro.papers.bahdanau_attention.run import (
    BOS,
    PAD,
    bucket_edges,
    make_batch,
    matched_hidden,
)


def test_reverse_and_copy_batches():
    g = torch.Generator().manual_seed(0)
    src, lengths, tgt = make_batch("reverse", 8, (2, 6), 5, g)
    for s, n, t in zip(src, lengths, tgt):
        n = int(n)
        assert t[0] == BOS
        assert t[1 : n + 1].tolist() == s[:n].flip(0).tolist()
        assert (s[n:] == PAD).all() and (t[n + 1 :] == PAD).all()
    src, lengths, tgt = make_batch("copy", 4, 5, 5, g)
    assert (lengths == 5).all() and (tgt[:, 1:] == src).all()


def test_baseline_is_matched_in_parameters():
    cfg = Config(hidden=32, emb=16)
    vocab = 20
    n_att = param_count(Seq2Seq(vocab, cfg.emb, cfg.hidden, attention=True))
    h = matched_hidden(cfg, vocab, n_att)
    n_base = param_count(Seq2Seq(vocab, cfg.emb, h, attention=False))
    assert h > cfg.hidden  # the baseline gets the attention's parameters as width
    assert abs(n_base / n_att - 1) < 0.03


def test_buckets_cover_the_range():
    edges = bucket_edges(Config(min_len=10, max_len=60, buckets=5))
    assert edges[0][0] == 10 and edges[-1][1] == 60
    assert all(b[0] == a[1] + 1 for a, b in zip(edges, edges[1:]))


def test_alignment_is_a_distribution_over_real_source_positions():
    torch.manual_seed(0)
    m = Seq2Seq(9, 8, 12, attention=True)
    g = torch.Generator().manual_seed(1)
    src, lengths, tgt = make_batch("reverse", 5, (2, 7), 7, g)
    _, alpha = m(src, lengths, tgt[:, :-1], return_alignment=True)
    assert alpha.shape == (5, tgt.shape[1] - 1, src.shape[1])
    torch.testing.assert_close(alpha.sum(-1), torch.ones(alpha.shape[:2]))
    pad = torch.arange(src.shape[1])[None] >= lengths[:, None]
    assert (alpha.masked_select(pad[:, None, :].expand_as(alpha)) == 0).all()


def test_padding_does_not_change_the_result():
    """A sequence decoded alone and inside a padded batch gives the same logits."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(2)
    for attention in (True, False):
        m = Seq2Seq(9, 8, 12, attention=attention).eval()
        src, lengths, tgt = make_batch("reverse", 4, (2, 7), 7, g)
        full = m(src, lengths, tgt[:, :-1])
        i = int(lengths.argmin())
        n = int(lengths[i])
        alone = m(src[i : i + 1, :n], lengths[i : i + 1], tgt[i : i + 1, :n])
        torch.testing.assert_close(full[i, :n], alone[0], rtol=1e-5, atol=1e-5)


def test_greedy_agrees_with_teacher_forcing_on_its_own_output():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)
    for attention in (True, False):
        m = Seq2Seq(9, 8, 12, attention=attention).eval()
        src, lengths, tgt = make_batch("reverse", 3, 6, 7, g)
        pred = m.greedy(src, lengths, BOS, 6)
        fed = torch.cat([torch.full((3, 1), BOS), pred[:, :-1]], dim=1)
        assert (m(src, lengths, fed).argmax(-1) == pred).all()


def test_summary_is_last_forward_and_first_backward_state():
    """The baseline's fixed vector is [→h_T ; ←h_1], read from the packed GRU correctly."""
    torch.manual_seed(0)
    m = Seq2Seq(9, 8, 12, attention=False).eval()
    g = torch.Generator().manual_seed(4)
    src, lengths, tgt = make_batch("reverse", 2, 5, 7, g)
    ann, summary = m.encoder(src, lengths)
    # forward state at the last step and backward state at the first one
    torch.testing.assert_close(summary[:, :12], ann[:, -1, :12])
    torch.testing.assert_close(summary[:, 12:], ann[:, 0, 12:])


def test_main_reports_per_seed_samples_and_gate_metrics(tmp_path):
    """A tiny run gives one value per seed for every finding and the learned-gate margins."""
    from repro.context import RunContext
    from repro.papers.bahdanau_attention.run import main

    cfg = Config(
        min_len=2,
        max_len=6,
        n_symbols=5,
        buckets=2,
        emb=8,
        hidden=8,
        steps=3,
        batch=8,
        eval_per_bucket=8,
        seeds=2,
    )
    ctx = RunContext(out_dir=tmp_path, show_progress=False)
    assert main(cfg, ctx) is None
    m = ctx.metrics
    for task in ("reverse", "copy"):
        for key in (
            "no_attention_drop",
            "attention_drop_ratio",
            "long_bucket_gap",
            "attention_below_unigram",
            "no_attention_below_unigram",
            "no_attention_shortest",
        ):
            assert len(m[f"{task}_{key}"]) == 2, (task, key)
        att, base = (
            m[f"{task}_accuracy_attention_per_seed"],
            m[f"{task}_accuracy_no_attention_per_seed"],
        )
        gap = [a[-1] - b[-1] for a, b in zip(att, base)]
        assert m[f"{task}_long_bucket_gap"] == gap  # paired by seed
        assert m[f"{task}_no_attention_shortest"] == [b[0] for b in base]
        assert len(m[f"{task}_accuracy_attention"]) == 2  # mean curve, one value per bucket
    assert (tmp_path / "accuracy_vs_length_copy.png").exists() or any(tmp_path.rglob("*copy*.png"))


def test_baseline_decoder_equals_a_step_by_step_cell():
    """The fixed-vector decoder runs the whole target through one nn.GRU call; a GRUCell with
    the same weights stepped one position at a time gives the same logits."""
    torch.manual_seed(0)
    m = Seq2Seq(9, 8, 12, attention=False).eval()
    cell = torch.nn.GRUCell(8 + 24, 12)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(cell, name).data.copy_(getattr(m.rnn, f"{name}_l0"))
    g = torch.Generator().manual_seed(4)
    src, lengths, tgt = make_batch("copy", 3, (2, 7), 7, g)
    with torch.no_grad():
        _, summary = m.encoder(src, lengths)
        s = torch.tanh(m.init(summary[:, 12:]))
        outs = []
        for i in range(tgt.shape[1] - 1):
            e = m.embed(tgt[:, i])
            s = cell(torch.cat([e, summary], dim=-1), s)
            outs.append(m.out(torch.tanh(m.readout(torch.cat([s, e, summary], dim=-1)))))
        torch.testing.assert_close(m(src, lengths, tgt[:, :-1]), torch.stack(outs, 1))


def test_every_task_has_its_three_gated_findings():
    from repro.papers.bahdanau_attention import REPRO

    ids = {c.id for c in REPRO.claims}
    for prefix in ("", "copy-"):
        for name in (
            "no-attention-degrades",
            "attention-degrades-much-less",
            "attention-wins-on-long",
        ):
            assert prefix + name in ids
    for c in REPRO.claims:
        task = "copy" if c.id.startswith("copy-") else "reverse"
        assert c.kind == "finding" and c.metric.startswith(task + "_")
        assert {g.metric for g in c.gates} == {
            f"{task}_attention_below_unigram",
            f"{task}_no_attention_below_unigram",
            f"{task}_no_attention_shortest",
        }
