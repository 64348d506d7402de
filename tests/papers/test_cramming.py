"""Cramming: the budget and schedules, the model's switches against a manual path and against
Hugging Face BERT, masking, packing, training (accumulation, resume), data loaders, fine-tuning.
Tiny sizes; the two-process DDP test is in test_cramming_ddp.py."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys

import pytest
import torch

from repro.papers.cramming.data import (
    CLS,
    GENRE_GROUPS,
    MASK,
    N_SPECIAL,
    SEP,
    balanced_subset,
    genre_passages,
    mask_tokens,
    pack_documents,
)
from repro.papers.cramming.evaluate import (
    FinetuneSettings,
    balanced_accuracy,
    cosine_with_warmup,
    evaluate_mlm,
    finetune,
)
from repro.papers.cramming.model import MaskedLM, model_config
from repro.papers.cramming.recipes import (
    CRAMMED,
    ORIGINAL,
    batch_size_at,
    lr_factor,
    parse_budget,
)
from repro.papers.cramming.train import TrainSettings, batch_rows, pretrain


def micro(recipe=CRAMMED, **kw):
    return model_config("micro", **{**recipe.model_overrides(), **kw})


def random_seqs(n=16, T=32, V=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(N_SPECIAL, V, (n, T), generator=g)
    x[:, 0] = CLS
    return x


# --------------------------------------------------------------------------- budget, schedules
@pytest.mark.parametrize(
    "text,seconds",
    [("90s", 90), ("2m", 120), ("1.5h", 5400), ("24h", 86400), ("1h30m", 5400), (" 2M ", 120)],
)
def test_parse_budget(text, seconds):
    assert parse_budget(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["24", "", "2x", "m", "0s", "2m30"])
def test_parse_budget_rejects_with_a_clear_message(bad):
    with pytest.raises(ValueError, match="budget"):
        parse_budget(bad)


def test_crammed_triangle_schedule():
    f = lambda t: lr_factor(CRAMMED, t)  # noqa: E731
    assert f(0) == pytest.approx(0.25)
    assert f(0.375) == pytest.approx(0.625)  # halfway up
    assert f(0.75) == pytest.approx(1.0)
    assert f(0.875) == pytest.approx(0.5)
    assert f(1.0) == 0.0
    ts = [i / 200 for i in range(151)]
    assert all(f(a) <= f(b) for a, b in zip(ts, ts[1:]))  # rising until the peak


def test_original_warmup_then_linear_decay():
    f = lambda t: lr_factor(ORIGINAL, t)  # noqa: E731
    assert f(0) == 0.0
    assert f(0.005) == pytest.approx(0.5)
    assert f(0.01) == pytest.approx(1.0)
    assert f(0.505) == pytest.approx(0.5)
    assert f(1.0) == 0.0


def test_batch_ramp_is_whole_micro_batches_and_reaches_full():
    sizes = [batch_size_at(CRAMMED, i / 100, 64, 8) for i in range(101)]
    assert sizes[0] == 8 and sizes[-1] == 64
    assert all(s % 8 == 0 for s in sizes)
    assert sizes == sorted(sizes)
    assert batch_size_at(CRAMMED, CRAMMED.batch_ramp, 64, 8) == 64
    assert all(batch_size_at(ORIGINAL, t, 64, 8) == 64 for t in (0, 0.3, 1))
    with pytest.raises(ValueError, match="multiple"):
        batch_size_at(CRAMMED, 0.1, 60, 8)


# --------------------------------------------------------------------------- model
@pytest.mark.parametrize("recipe", [CRAMMED, ORIGINAL])
def test_sdpa_matches_manual_attention(recipe):
    torch.manual_seed(0)
    a = MaskedLM(micro(recipe, attention="sdpa")).eval()
    b = MaskedLM(micro(recipe, attention="manual")).eval()
    b.load_state_dict(a.state_dict())
    x = random_seqs()
    torch.testing.assert_close(a.encoder(x), b.encoder(x), rtol=1e-5, atol=1e-5)


def test_sparse_prediction_gives_the_full_prediction_loss():
    torch.manual_seed(0)
    sparse = MaskedLM(micro(sparse_prediction=True))
    full = MaskedLM(micro(sparse_prediction=False))
    full.load_state_dict(sparse.state_dict())
    x, y = mask_tokens(random_seqs(), 0.25, torch.Generator().manual_seed(1), vocab_size=512)
    ls, cs, ns = sparse.loss_terms(x, y)
    lf, cf, nf = full.loss_terms(x, y)
    assert int(ns) == int(nf) > 0
    assert int(cs) == int(cf)
    torch.testing.assert_close(ls, lf, rtol=1e-5, atol=1e-4)


def test_switches_change_the_architecture():
    crammed, original = MaskedLM(micro(CRAMMED)), MaskedLM(micro(ORIGINAL))
    lin_biases = [m.bias for m in crammed.modules() if isinstance(m, torch.nn.Linear)]
    assert all(b is None for b in lin_biases)
    assert all(m.bias is not None for m in original.modules() if isinstance(m, torch.nn.Linear))
    # gated FFN: the F-wide projection is split, so the second matrix is half as wide
    assert crammed.encoder.blocks[0].ffn.down.in_features == micro().ffn // 2
    assert original.encoder.blocks[0].ffn.down.in_features == micro().ffn
    assert crammed.encoder.final_norm is not None and original.encoder.final_norm is None
    assert crammed.decoder.weight is crammed.encoder.embed.tok.weight  # tied
    # pre-LN vs post-LN: a different computation with the same weights (init std raised so the
    # sub-layers are not negligible next to the normalised embeddings)
    torch.manual_seed(0)
    pre = MaskedLM(micro(CRAMMED, init_std=0.3)).eval()
    post = MaskedLM(micro(CRAMMED, norm="post", init_std=0.3)).eval()
    post.load_state_dict(pre.state_dict())
    x = random_seqs()
    assert not torch.allclose(pre.encoder(x), post.encoder(x), atol=1e-3)


def test_original_recipe_equals_hugging_face_bert_with_the_same_weights():
    """Our original-recipe model is BERT: copy the weights of transformers' BertForMaskedLM into
    it and the MLM logits agree (token-type embeddings zeroed: we have no segments)."""
    transformers = pytest.importorskip("transformers")
    cfg = micro(ORIGINAL, dropout=0.0)
    hf = transformers.BertForMaskedLM(
        transformers.BertConfig(
            vocab_size=cfg.vocab_size,
            hidden_size=cfg.hidden,
            num_hidden_layers=cfg.layers,
            num_attention_heads=cfg.heads,
            intermediate_size=cfg.ffn,
            max_position_embeddings=cfg.max_seq,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )
    ).eval()
    ours = MaskedLM(cfg).eval()
    b = hf.bert
    sd = {
        "encoder.embed.tok.weight": b.embeddings.word_embeddings.weight,
        "encoder.embed.pos.weight": b.embeddings.position_embeddings.weight,
        "encoder.embed.norm.weight": b.embeddings.LayerNorm.weight,
        "encoder.embed.norm.bias": b.embeddings.LayerNorm.bias,
        "transform.0.weight": hf.cls.predictions.transform.dense.weight,
        "transform.0.bias": hf.cls.predictions.transform.dense.bias,
        "transform.2.weight": hf.cls.predictions.transform.LayerNorm.weight,
        "transform.2.bias": hf.cls.predictions.transform.LayerNorm.bias,
        "decoder.weight": b.embeddings.word_embeddings.weight,
        "decoder.bias": hf.cls.predictions.decoder.bias,
    }
    for i, layer in enumerate(b.encoder.layer):
        att = layer.attention
        p = f"encoder.blocks.{i}."
        sd[p + "attn.qkv.weight"] = torch.cat(
            [att.self.query.weight, att.self.key.weight, att.self.value.weight]
        )
        sd[p + "attn.qkv.bias"] = torch.cat(
            [att.self.query.bias, att.self.key.bias, att.self.value.bias]
        )
        for ours_name, theirs in (
            ("attn.out", att.output.dense),
            ("norm1", att.output.LayerNorm),
            ("ffn.up", layer.intermediate.dense),
            ("ffn.down", layer.output.dense),
            ("norm2", layer.output.LayerNorm),
        ):
            sd[p + ours_name + ".weight"] = theirs.weight
            sd[p + ours_name + ".bias"] = theirs.bias
    ours.load_state_dict({k: v.detach().clone() for k, v in sd.items()}, strict=True)
    with torch.no_grad():
        b.embeddings.token_type_embeddings.weight.zero_()
        x = random_seqs()
        theirs = hf(input_ids=x).logits
        mine = ours.logits(ours.encoder(x))
    torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------- data
def test_masking_rates_and_the_80_10_10_rule():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(N_SPECIAL, 1000, (200, 128), generator=g)
    ids[:, 0] = CLS
    x, y = mask_tokens(ids, 0.25, g, vocab_size=1000)
    chosen = y != -100
    assert not chosen[:, 0].any()  # specials are never chosen
    assert chosen[:, 1:].float().mean().item() == pytest.approx(0.25, abs=0.01)
    assert torch.equal(y[chosen], ids[chosen]) and torch.equal(x[~chosen], ids[~chosen])
    as_mask = (x[chosen] == MASK).float().mean().item()
    kept = (x[chosen] == ids[chosen]).float().mean().item()
    assert as_mask == pytest.approx(0.8, abs=0.02)
    assert kept == pytest.approx(0.1 + 0.1 / 1000, abs=0.02)  # 10% kept, plus random hits
    x2, y2 = mask_tokens(
        ids, 0.15, torch.Generator().manual_seed(0), vocab_size=1000, rule_80_10_10=False
    )
    assert (x2[y2 != -100] == MASK).all()


def test_packing_keeps_the_stream_and_starts_with_cls():
    docs = [torch.arange(10, 30), torch.arange(40, 55)]
    out = pack_documents(docs, seq_len=8)
    assert out.shape == ((20 + 1 + 15 + 1) // 7, 8)
    assert (out[:, 0] == CLS).all()
    stream = torch.cat([docs[0], torch.tensor([SEP]), docs[1], torch.tensor([SEP])])
    assert torch.equal(out[:, 1:].reshape(-1), stream[: out.shape[0] * 7])


def test_genre_passages_stay_inside_documents():
    from repro.common.data import Document

    docs = [Document("a", "news", ""), Document("b", "romance", ""), Document("c", "learned", "")]
    enc = [torch.arange(100, 120), torch.arange(200, 205), torch.arange(300, 316)]
    x, y = genre_passages(enc, docs, seq_len=9)
    groups = list(GENRE_GROUPS)
    assert y.tolist() == [groups.index("press")] * 2 + [groups.index("nonfiction")] * 2
    assert x[0, 1:].tolist() == list(range(100, 108)) and x[2, 1:].tolist() == list(range(300, 308))
    xs, ys = balanced_subset(x, y, 1, torch.Generator().manual_seed(0))
    assert sorted(ys.tolist()) == sorted(set(y.tolist()))


def test_batch_rows_cover_each_epoch_once():
    rows = batch_rows(0, 30, 10, seed=3)
    for e in range(3):
        assert sorted(rows[10 * e : 10 * e + 10].tolist()) == list(range(10))
    assert torch.equal(batch_rows(7, 9, 10, seed=3), rows[7:16])  # a pure function of the cursor


def test_hub_loader_path_reads_local_text_through_datasets(tmp_path, monkeypatch):
    pytest.importorskip("datasets")
    from repro.common.data import load_brown
    from repro.papers.cramming.data import encode_documents, load_corpus

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    folder = tmp_path / "texts"
    folder.mkdir()
    for i, d in enumerate(load_brown()[:3]):
        # the "text" builder yields one row per line: one paragraph per line here
        (folder / f"{i}.txt").write_text(
            "\n".join(p.replace("\n", " ") for p in d.text.split("\n\n"))
        )
    corpus = load_corpus(f"hf:text:{folder}/*.txt", vocab_size=300)
    assert len(corpus.train_docs) + len(corpus.val_docs) > 20
    seqs = pack_documents(encode_documents(corpus.tokenizer, corpus.train_docs), 32)
    assert seqs.shape[1] == 32 and seqs.max() < corpus.vocab_size


# --------------------------------------------------------------------------- training
def _settings(**kw):
    base = dict(budget_s=600, max_steps=6, batch_size=8, micro_batch=4, seed=0, show_progress=False)
    return TrainSettings(**{**base, **kw})


def test_training_lowers_the_loss_on_a_learnable_pattern():
    """Planted effect: every sequence repeats one of 16 tokens, so a masked token is one of 16
    (ln 16 ≈ 2.8 nats) or, better, its neighbours' token; 40 crammed steps must cut the held-out
    loss from about ln(512) ≈ 6.2 by more than 2 nats."""
    g = torch.Generator().manual_seed(0)
    seqs = (N_SPECIAL + torch.randint(0, 16, (256, 1), generator=g)).repeat(1, 32)
    seqs[:, 0] = CLS
    cfg = micro()
    before = evaluate_mlm(MaskedLM(cfg), seqs[:32])[0]
    fast = dataclasses.replace(CRAMMED, lr=5e-3)  # a 32-wide model learns slowly at 1e-3
    res = pretrain(cfg, fast, seqs[32:], _settings(max_steps=40, batch_size=16, micro_batch=8))
    after, _ = evaluate_mlm(res.model, seqs[:32])
    assert before > math.log(512) - 0.5
    assert after < before - 2
    assert res.stopped == "steps" and res.steps == 40


def test_gradient_accumulation_equals_one_big_batch():
    """Loss terms are sums divided by the masked count of the whole batch, so two micro-batches
    of 4 give the same update as one of 8."""
    recipe = dataclasses.replace(CRAMMED, batch_ramp=0.0)
    seqs = random_seqs(64)
    a = pretrain(micro(), recipe, seqs, _settings(micro_batch=4))
    b = pretrain(micro(), recipe, seqs, _settings(micro_batch=8))
    for (n, p), q in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=n)
    assert [h["loss"] for h in a.history] == pytest.approx([h["loss"] for h in b.history], rel=1e-5)


def test_interrupt_writes_a_checkpoint_and_resume_continues(tmp_path):
    seqs = random_seqs(64)
    path = tmp_path / "ck.pt"
    whole = pretrain(micro(), CRAMMED, seqs, _settings())

    def stop(step):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pretrain(micro(), CRAMMED, seqs, _settings(checkpoint_path=path, on_step=stop))
    assert path.exists() and torch.load(path, weights_only=False)["step"] == 3
    resumed = pretrain(micro(), CRAMMED, seqs, _settings(checkpoint_path=path, resume=True))
    assert resumed.steps == 6
    for p, q in zip(whole.model.state_dict().values(), resumed.model.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="another model or recipe"):
        pretrain(micro(ORIGINAL), ORIGINAL, seqs, _settings(checkpoint_path=path, resume=True))


def test_wall_clock_budget_stops_the_run():
    res = pretrain(micro(), CRAMMED, random_seqs(64), _settings(budget_s=0.5, max_steps=0))
    assert res.stopped == "budget" and res.steps >= 1
    assert 0.5 <= res.elapsed_s < 5
    assert res.history[-1]["t"] < 1.0


# --------------------------------------------------------------------------- evaluation
def test_finetune_learns_a_planted_label():
    """Label = whether token 7 or token 8 fills the passage's second half: the classifier must
    find it (balanced accuracy near 1) from a random initialisation."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(N_SPECIAL + 3, 512, (240, 32), generator=g)
    x[:, 0] = CLS
    y = torch.arange(240) % 2
    x[:, 16:] = torch.where(y[:, None] == 1, 7, 8)
    res = finetune(
        micro(),
        None,
        (x[:160], y[:160]),
        (x[160:], y[160:]),
        2,
        FinetuneSettings(epochs=3, lr=1e-3, pooler="mean"),
    )
    assert res["balanced_accuracy"] > 0.95


def test_metric_helpers():
    assert balanced_accuracy(torch.tensor([0, 0, 0, 1]), torch.tensor([0, 0, 0, 0 + 1])) == 1.0
    assert balanced_accuracy(torch.tensor([0, 0, 0, 0]), torch.tensor([0, 0, 0, 1])) == 0.5
    assert cosine_with_warmup(0, 100, 0.1) == pytest.approx(0.1)
    assert cosine_with_warmup(10, 100, 0.1) == pytest.approx(1.0)
    assert cosine_with_warmup(99, 100, 0.1) < 0.01


def test_declaration_is_light_and_valid():
    code = (
        "import sys; from repro.papers.cramming import REPRO; "
        "assert not REPRO.problems(), REPRO.problems(); "
        "REPRO.make_config('quick'); REPRO.make_config('full'); "
        "assert 'torch' not in sys.modules, 'the declaration imported torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_rejects_a_budget_without_unit(capsys):
    from repro.papers.cramming.train import main

    assert main(["--budget=24", "--dry_run"]) == 2
    assert "unit" in capsys.readouterr().err
    assert main(["--budget=24h", "--dry_run"]) == 0


def test_tiny_run_reports_paired_per_seed_metrics_and_gates(tmp_path):
    """Three seeds of two steps each: the loss gap, the accuracy gap and each recipe's margin
    below the unigram loss are per-seed lists, and the claims judge them: two steps learn
    nothing, so the learned gates make both findings inconclusive."""
    from repro.claims import judge
    from repro.context import RunContext
    from repro.papers.cramming import REPRO, Config
    from repro.papers.cramming.run import main

    cfg = dataclasses.replace(
        Config(),
        model="micro",
        vocab_size=512,
        seq_len=32,
        batch_size=8,
        micro_batch=4,
        max_steps=2,
        eval_sequences=16,
        finetune_per_class=4,
        finetune_test_per_class=4,
        finetune_epochs=1,
        throughput_steps=1,
        throughput_rounds=1,
        checkpoint=False,
        seeds=3,
    )
    ctx = RunContext(out_dir=tmp_path / "out", show_progress=False)
    threads = torch.get_num_threads()
    main(cfg, ctx)
    assert torch.get_num_threads() == threads  # single-threaded pretraining is undone after it
    m = ctx.metrics
    assert m["seeds"] == [0, 1, 2]
    losses = m["heldout_loss"]
    assert m["mlm_loss_gap"] == pytest.approx(
        [o - c for o, c in zip(losses["original"], losses["crammed"])]
    )
    for recipe in ("crammed", "original"):
        assert m[f"{recipe}_below_unigram"] == pytest.approx(
            [m["heldout_unigram_loss"] - x for x in losses[recipe]]
        )
        assert m["heldout_accuracy"][recipe] == pytest.approx(
            [m["pretraining"][f"{recipe}_seed{s}"]["heldout_mlm_accuracy"] for s in range(3)]
        )
    assert len(m["downstream_accuracy_gap"]) == 3
    acc = m["downstream_accuracy"]
    assert set(acc) == {"crammed", "original", "random_init"}
    assert m["downstream_crammed_vs_original"] == pytest.approx(
        [c - o for c, o in zip(acc["crammed"], acc["original"])]
    )
    assert m["downstream_accuracy_gap"] == pytest.approx(
        [c - r for c, r in zip(acc["crammed"], acc["random_init"])]
    )
    # mid-run evaluations happen inside the budget, at fixed fractions of it
    evals = m["pretraining"]["crammed_seed0"]["midrun_evals"]
    assert [e["step"] for e in evals] == [1] and evals[0]["heldout_loss"] > 0
    rows = {
        r["id"]: r
        for r in judge(REPRO.claims, m, ctx.skipped, preset="quick", device="cpu", status="ok")
    }
    for cid in (
        "crammed-beats-original",
        "pretraining-helps-downstream",
        "crammed-finetunes-better",
    ):
        assert rows[cid]["n"] == 3
        assert rows[cid]["verdict"] == "inconclusive" and "learned" in rows[cid]["reason"]
    assert rows["paper-scale-gpu"]["verdict"] == "not checked at this scale"
    assert rows["throughput-vs-hf-bert"]["kind"] == "check"
