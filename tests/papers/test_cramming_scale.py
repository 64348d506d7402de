"""Cramming at scale, tested small: padding masks, GLUE (loader on local files in GLUE's own
formats, pair encoding, metrics, fine-tuning), the sharded data path and its benchmark, and the
paper's training regime (static masks, periodic checkpoints and resume, mid-run evaluation,
torch.compile, equal-FLOPs throughput peer)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from test_cramming import micro, random_seqs  # the same micro model and random batches

from repro.papers.cramming.data import CLS, PAD, SEP, mask_tokens, masked_count
from repro.papers.cramming.model import MaskedLM, SequenceClassifier, model_config
from repro.papers.cramming.recipes import CRAMMED, ORIGINAL
from repro.papers.cramming.train import TrainSettings, batch_rows, pretrain


# --------------------------------------------------------------------------- padding masks
@pytest.mark.parametrize("attention", ["sdpa", "manual"])
@pytest.mark.parametrize("recipe", [CRAMMED, ORIGINAL])
def test_padding_does_not_change_the_real_tokens(attention, recipe):
    """Appending [PAD] tokens that the mask hides leaves every real position's output as it was
    without them, and mean pooling averages the real positions only."""
    torch.manual_seed(0)
    cfg = micro(recipe, attention=attention, dropout=0.0)
    enc = MaskedLM(cfg).encoder.eval()
    x = random_seqs(3, 12)
    padded = torch.cat([x, torch.full((3, 9), PAD)], dim=1)
    mask = torch.cat([torch.ones(3, 12), torch.zeros(3, 9)], dim=1).long()
    torch.testing.assert_close(enc(padded, mask)[:, :12], enc(x), rtol=1e-5, atol=1e-5)
    # without the mask the padding leaks in
    assert not torch.allclose(enc(padded)[:, :12], enc(x), atol=1e-4)
    clf = SequenceClassifier(cfg, 2, dropout=0.0, pooler="mean").eval()
    torch.testing.assert_close(clf(padded, mask), clf(x), rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- static masks
def test_exact_masking_picks_k_tokens_per_row_and_static_gather_matches():
    x = random_seqs(8, 32)
    x[0, 5:] = SEP  # a row with only 4 maskable tokens
    k = masked_count(0.25, 32)
    inputs, labels = mask_tokens(
        x, 0.25, torch.Generator().manual_seed(0), vocab_size=512, exact=True
    )
    counts = (labels != -100).sum(1)
    assert counts[0] == 4 and (counts[1:] == k).all()
    assert (labels[:, 0] == -100).all()  # [CLS] is never chosen
    torch.manual_seed(0)
    m = MaskedLM(micro())
    dynamic = m.loss_terms(inputs, labels)
    static = m.loss_terms(inputs, labels, masked_per_seq=k)
    assert int(static[2]) == int(dynamic[2]) == int(counts.sum())
    assert int(static[1]) == int(dynamic[1])
    torch.testing.assert_close(static[0], dynamic[0], rtol=1e-5, atol=1e-4)


def test_batch_rows_is_a_permutation_and_needs_no_corpus_sized_work():
    for n in (1, 2, 7, 10, 97, 1000):
        rows = batch_rows(0, 2 * n, n, seed=5)
        assert sorted(rows[:n].tolist()) == list(range(n))
        assert sorted(rows[n:].tolist()) == list(range(n))
    # a corpus of 10^15 windows: the affine map draws a batch without building a permutation
    big = batch_rows(123_456_789, 64, 10**15, seed=1)
    assert len(big) == 64 and len(set(big.tolist())) == 64 and int(big.max()) < 10**15


# --------------------------------------------------------------------------- regime
def _settings(**kw):
    base = dict(budget_s=600, max_steps=8, batch_size=8, micro_batch=4, seed=0, show_progress=False)
    return TrainSettings(**{**base, **kw})


def test_crash_loses_only_the_steps_since_the_periodic_checkpoint(tmp_path):
    """A run that crashes (an exception, which writes nothing) at step 7 with checkpoints every
    3 steps resumes from step 6 and ends where the uninterrupted run ends."""
    seqs = random_seqs(64)
    path = tmp_path / "ck.pt"
    whole = pretrain(micro(), CRAMMED, seqs, _settings())

    def crash(step):
        if step == 7:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        pretrain(
            micro(),
            CRAMMED,
            seqs,
            _settings(checkpoint_path=path, checkpoint_every_steps=3, on_step=crash),
        )
    assert torch.load(path, weights_only=False)["step"] == 6
    assert not list(tmp_path.glob("*.tmp"))  # the atomic write left no temporary file
    resumed = pretrain(micro(), CRAMMED, seqs, _settings(checkpoint_path=path, resume=True))
    assert resumed.steps == 8
    for (n, p), q in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6, msg=n)
    assert [h["loss"] for h in resumed.history] == pytest.approx([h["loss"] for h in whole.history])


def test_midrun_evaluation_and_static_masks():
    seqs = random_seqs(64)
    res = pretrain(
        micro(),
        CRAMMED,
        seqs[16:],
        _settings(eval_data=seqs[:16], eval_every=0.25, static_masks=True),
    )
    assert [e["step"] for e in res.evals] == [2, 4, 6]
    assert all(math.isfinite(e["heldout_loss"]) for e in res.evals)


def test_compile_trains_with_static_shapes():
    """torch.compile of the crammed model (static masks) gives the eager run's weights."""
    try:
        torch.compile(lambda a: a + 1)(torch.ones(2))
    except Exception as e:  # pragma: no cover - depends on the machine's compiler
        pytest.skip(f"torch.compile does not work on this machine: {type(e).__name__}: {e}")
    seqs = random_seqs(32, 16)
    cfg = model_config("micro", **{**CRAMMED.model_overrides(), "layers": 1, "max_seq": 16})
    s = _settings(max_steps=3, static_masks=True)
    eager = pretrain(cfg, CRAMMED, seqs, s)
    compiled = pretrain(cfg, CRAMMED, seqs, _settings(max_steps=3, compile=True))
    for (n, p), q in zip(eager.model.state_dict().items(), compiled.model.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-4, msg=n)


def test_equal_flops_peer():
    from repro.papers.cramming.bench import equal_flops_intermediate

    H, F = 128, 512
    ours = H * F + (F // 2) * H  # gated: H→F (value and gate), F/2→H
    I = equal_flops_intermediate(F)
    assert 2 * H * I == ours


# --------------------------------------------------------------------------- GLUE
def _write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _glue_tsv(root):
    """A few rows of four tasks, written as the GLUE distribution writes them."""
    cola = [
        "gj04\t1\t\tOur friends won't buy this analysis, let alone the next one we propose.",
        "gj04\t0\t*\tOne more pseudo generalization or I'm giving up.",
        'gj04\t1\t\tThe "quoted" word stays.',
        "gj04\t0\t*\tThe more we study verbs, the crazier they get get.",
    ]
    _write(root / "CoLA" / "train.tsv", cola)
    _write(root / "CoLA" / "dev.tsv", cola[:2] + cola[3:])
    mrpc = [
        "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String",
        "1\t702876\t702977\tHe said the plan was good.\tThe plan was good, he said.",
        "0\t2108705\t2108831\tShares rose 5 percent.\tThe weather was cold in May.",
        "1\t1330381\t1330521\tThe court ruled on Monday.\tOn Monday the court ruled.",
    ]
    _write(root / "MRPC" / "train.tsv", mrpc)
    _write(root / "MRPC" / "dev.tsv", mrpc)
    mnli = [
        "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
        "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label",
        "0\t1\t1e\tgov\t(a)\t(b)\t(A)\t(B)\tA man is eating.\tSomeone eats.\tentailment\tentailment",
        "1\t2\t2n\tgov\t(a)\t(b)\t(A)\t(B)\tA man is eating.\tHe is hungry.\tneutral\tneutral",
        "2\t3\t3c\tgov\t(a)\t(b)\t(A)\t(B)\tA man is eating.\tNobody eats.\tcontradiction\tcontradiction",
    ]
    _write(root / "MNLI" / "train.tsv", mnli)
    _write(root / "MNLI" / "dev_matched.tsv", mnli)
    stsb = [
        "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore",
        "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane is taking off.\tAn air plane is taking off.\t5.000",
        "1\tmain-captions\tMSRvid\t2012test\t0004\tnone\tnone\tA man is playing a flute.\tA man is eating.\t0.500",
        "2\tmain-captions\tMSRvid\t2012test\t0005\tnone\tnone\tA cat plays.\tA kitten is playing.\t3.800",
    ]
    _write(root / "STS-B" / "train.tsv", stsb)
    _write(root / "STS-B" / "dev.tsv", stsb)


def test_glue_loader_reads_the_tsv_distribution(tmp_path, monkeypatch):
    pytest.importorskip("datasets")
    from repro.papers.cramming.glue import load_glue

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    _glue_tsv(tmp_path / "glue_data")
    cola = load_glue("cola", tmp_path / "glue_data")
    assert cola["train"]["label"] == [1, 0, 1, 0]
    assert cola["train"]["sentence"][2] == 'The "quoted" word stays.'  # no quote processing
    assert len(cola["validation"]) == 3
    mrpc = load_glue("MRPC", tmp_path / "glue_data")
    assert mrpc["train"].column_names == ["sentence1", "sentence2", "label"]
    assert mrpc["train"]["label"] == [1, 0, 1]
    mnli = load_glue("mnli", tmp_path / "glue_data" / "MNLI")
    assert mnli["validation_matched"]["label"] == [0, 1, 2]  # the Hub's label ids
    assert mnli["train"]["premise"][0] == "A man is eating."
    stsb = load_glue("sts-b", tmp_path / "glue_data")
    assert stsb["train"]["label"] == pytest.approx([5.0, 0.5, 3.8])


def test_glue_loader_reads_the_hub_layouts_and_names_what_is_wrong(tmp_path, monkeypatch):
    pytest.importorskip("datasets")
    pd = pytest.importorskip("pandas")
    from repro.papers.cramming.glue import load_glue

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    sst = tmp_path / "hub" / "sst2"
    sst.mkdir(parents=True)
    rows = {
        "sentence": ["a fine film", "a dull mess", "warm and witty"],
        "label": [1, 0, 1],
        "idx": [0, 1, 2],
    }
    pd.DataFrame(rows).to_parquet(sst / "train-00000-of-00001.parquet")
    pd.DataFrame(rows).to_parquet(sst / "validation-00000-of-00001.parquet")
    got = load_glue("sst2", tmp_path / "hub")
    assert got["train"]["label"] == [1, 0, 1] and got["validation"]["sentence"][1] == "a dull mess"
    rte = tmp_path / "hub" / "rte"
    rte.mkdir()
    for split in ("train", "validation"):
        with open(rte / f"{split}.jsonl", "w") as f:
            for i in range(2):
                f.write(
                    json.dumps({"sentence1": f"s{i}", "sentence2": f"t{i}", "label": i, "idx": i})
                    + "\n"
                )
    assert load_glue("rte", tmp_path / "hub")["validation"]["label"] == [0, 1]
    with pytest.raises(ValueError, match="choose one of"):
        load_glue("squad", tmp_path / "hub")
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_glue("rte", tmp_path / "nowhere")
    bad = tmp_path / "bad" / "QNLI"
    _write(bad / "train.tsv", ["index\tquestion\tsentence\tlabel", "0\tWhy?\tBecause.\tmaybe"])
    _write(bad / "dev.tsv", ["index\tquestion\tsentence\tlabel", "0\tWhy?\tBecause.\tentailment"])
    with pytest.raises(ValueError, match="'maybe' is not one of"):
        load_glue("qnli", tmp_path / "bad")


def test_glue_loader_without_datasets_says_what_to_install(monkeypatch):
    import sys

    from repro.papers.cramming import glue

    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ImportError, match=r"repro-papers\[glue\]"):
        glue.load_glue("cola", ".")


def test_pair_encoding_truncates_longest_first_and_pads():
    from repro.common.data import load_brown, train_tokenizer
    from repro.papers.cramming.glue import encode_pairs

    tok = train_tokenizer(load_brown()[:20], kind="wordpiece", vocab_size=300, lowercase=True)
    a = ["the jury said " * 20, "short"]
    b = ["it was fine", "also short"]
    ids, mask = encode_pairs(tok, a, b, max_len=24)
    assert ids.shape == (2, 24)
    row = ids[0].tolist()
    assert row[0] == CLS and row.count(SEP) == 2 and row[-1] == SEP
    b_len = len(tok.encode("it was fine", add_special_tokens=False).ids)
    assert 24 - 3 - row.index(SEP) + 1 == b_len  # the long side was cut, the short one kept
    n = int(mask[1].sum())
    assert (ids[1, n:] == PAD).all() and (mask[1, :n] == 1).all() and ids[1, n - 1] == SEP
    single, _ = encode_pairs(tok, ["the jury said " * 20], None, max_len=10)
    assert single.shape == (1, 10) and single[0, -1] == SEP


def test_glue_metrics_match_hand_computed_values():
    from repro.papers.cramming.glue import glue_metrics

    y, p = [1, 1, 0, 0, 1, 0], [1, 0, 0, 0, 1, 1]
    # tp=2, fp=1, fn=1, tn=2: accuracy 4/6, F1 2/3, Matthews (4-1)/sqrt(3·3·3·3) = 1/3
    m = glue_metrics("mrpc", p, y)
    assert m["accuracy"] == pytest.approx(4 / 6) and m["f1"] == pytest.approx(2 / 3)
    assert m["score"] == pytest.approx((4 / 6 + 2 / 3) / 2)
    assert glue_metrics("cola", p, y)["score"] == pytest.approx(1 / 3)
    s = glue_metrics("stsb", [0.1, 0.4, 0.35, 0.8], [0.0, 1.0, 2.0, 3.0])
    assert s["spearman"] == pytest.approx(0.8)  # ranks 1,3,2,4 against 1,2,3,4
    assert s["pearson"] == pytest.approx(
        float(np.corrcoef([0.1, 0.4, 0.35, 0.8], [0, 1, 2, 3])[0, 1])
    )


def test_glue_fine_tuning_end_to_end_on_local_files(tmp_path, monkeypatch):
    """The authors' settings (shortened) on a local MRPC and STS-B: classification and
    regression run through padding masks and pairs and come back with GLUE's metrics."""
    pytest.importorskip("datasets")
    import dataclasses

    from repro.common.data import load_brown, train_tokenizer
    from repro.papers.cramming.evaluate import GLUE_SETTINGS, finetune_glue
    from repro.papers.cramming.glue import load_glue

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    assert (GLUE_SETTINGS.lr, GLUE_SETTINGS.batch, GLUE_SETTINGS.epochs) == (4e-5, 16, 5)
    assert GLUE_SETTINGS.pooler == "cls" and GLUE_SETTINGS.betas == (0.9, 0.98)
    _glue_tsv(tmp_path / "glue")
    tok = train_tokenizer(load_brown()[:20], kind="wordpiece", vocab_size=512, lowercase=True)
    cfg = model_config("micro", vocab_size=tok.get_vocab_size(), **CRAMMED.model_overrides())
    fast = dataclasses.replace(GLUE_SETTINGS, epochs=2, lr=1e-3)
    state = MaskedLM(cfg).encoder.state_dict()
    m = finetune_glue(
        cfg, state, tok, "mrpc", load_glue("mrpc", tmp_path / "glue"), fast, max_len=32
    )
    assert set(m) >= {"accuracy", "f1", "score", "steps"} and m["steps"] == 2
    r = finetune_glue(
        cfg, None, tok, "stsb", load_glue("stsb", tmp_path / "glue"), fast, max_len=32
    )
    assert set(r) >= {"pearson", "spearman", "score"}


# --------------------------------------------------------------------------- shards
def _docs():
    from repro.common.data import load_brown

    return load_brown()[:12]


def _tok():
    from repro.common.data import train_tokenizer

    return train_tokenizer(_docs(), kind="wordpiece", vocab_size=400, lowercase=True)


def test_shards_hold_the_packed_stream_and_are_reused(tmp_path):
    from repro.papers.cramming.data import encode_documents, pack_documents
    from repro.papers.cramming.shards import ShardedTokens, prepare_shards

    docs, tok = _docs(), _tok()
    man = prepare_shards(
        (d.text for d in docs), tok, tmp_path / "s", source="t", shard_tokens=10**9
    )
    assert man["dtype"] == "uint16" and man["kept"] == len(docs) and len(man["shards"]) == 1
    data = ShardedTokens(tmp_path / "s", 32)
    packed = pack_documents(encode_documents(tok, docs, cache=False), 32)
    assert data.shape == tuple(packed.shape)
    rows = torch.tensor([0, 5, len(packed) - 1, 5])
    assert torch.equal(data[rows], packed[rows])
    # small shards: windows are cut inside each shard, documents straddle shard files
    man2 = prepare_shards(
        (d.text for d in docs), tok, tmp_path / "m", source="t", shard_tokens=1000
    )
    assert len(man2["shards"]) > 3 and man2["tokens"] == man["tokens"]
    many = ShardedTokens(tmp_path / "m", 32)
    assert len(many) >= len(packed) - len(man2["shards"])
    # prepared once: a second call with the same inputs reuses the files untouched
    before = (tmp_path / "s" / "shard-00000.bin").stat().st_mtime_ns
    again = prepare_shards(
        (d.text for d in docs), tok, tmp_path / "s", source="t", shard_tokens=10**9
    )
    assert again == man and (tmp_path / "s" / "shard-00000.bin").stat().st_mtime_ns == before
    assert not list(tmp_path.glob("*.tmp-*"))
    with pytest.raises(IndexError, match="out of range"):
        data[torch.tensor([len(data)])]
    with pytest.raises(FileNotFoundError, match="manifest"):
        ShardedTokens(tmp_path / "nothing", 32)


def test_shard_filters_and_wide_vocabularies(tmp_path):
    from repro.papers.cramming.shards import (
        FilterSettings,
        ShardedTokens,
        dtype_for,
        prepare_shards,
        train_tokenizer_on_sample,
    )

    tok = _tok()
    texts = [d.text for d in _docs()[:4]]
    stream = texts + [texts[0].upper().replace("\n", "  "), "zq xj kv 7f 9c 0x zz qq " * 30]
    man = prepare_shards(
        stream,
        tok,
        tmp_path / "f",
        source="f",
        filters=FilterSettings(max_tokens_per_char=0.5, dedup=True),  # Brown: ~0.42 at 400 entries
    )
    assert man["dropped_duplicate"] == 1  # the re-cased, re-spaced copy of the first document
    assert man["dropped_compression"] == 1  # the gibberish the tokenizer splits into pieces
    assert man["kept"] == 4
    assert dtype_for(65536) == np.uint16 and dtype_for(65537) == np.uint32
    sampled = train_tokenizer_on_sample(iter(texts), vocab_size=300, sample_docs=2)
    assert sampled.get_vocab_size() <= 300

    # a tokenizer past 65536 entries would need uint32: check the writer's choice with a stub
    class Wide:
        def __init__(self, inner):
            self.inner = inner

        def get_vocab_size(self):
            return 70000

        def to_str(self):
            return "wide" + self.inner.to_str()

        def encode_batch(self, *a, **k):
            return self.inner.encode_batch(*a, **k)

    w = prepare_shards(texts, Wide(tok), tmp_path / "w", source="w")
    assert w["dtype"] == "uint32"
    assert torch.equal(
        ShardedTokens(tmp_path / "w", 16)[torch.arange(4)],
        ShardedTokens(tmp_path / "f", 16)[torch.arange(4)],
    )


def test_training_from_shards_equals_training_from_the_packed_tensor(tmp_path):
    from repro.papers.cramming.data import encode_documents, pack_documents
    from repro.papers.cramming.shards import ShardedTokens, prepare_shards

    docs, tok = _docs(), _tok()
    prepare_shards((d.text for d in docs), tok, tmp_path / "s", source="t")
    data = ShardedTokens(tmp_path / "s", 32)
    packed = pack_documents(encode_documents(tok, docs, cache=False), 32)
    cfg = micro(vocab_size=tok.get_vocab_size())
    a = pretrain(cfg, CRAMMED, data, _settings(max_steps=3))
    b = pretrain(cfg, CRAMMED, packed, _settings(max_steps=3))
    assert [h["loss"] for h in a.history] == pytest.approx([h["loss"] for h in b.history])


def test_data_benchmark_reports_memory_and_speed(tmp_path):
    from repro.papers.cramming.databench import measure, parse_count

    assert parse_count("100M") == 10**8 and parse_count("250k") == 250_000
    with pytest.raises(ValueError, match="token count"):
        parse_count("lots")
    row = measure(
        60_000, tmp_path / "b", vocab_size=500, seq_len=32, batch=8, batches=20, shard_tokens=25_000
    )
    assert row["tokens"] == 60_000 and row["shards"] == 3
    assert row["prepare_tokens_per_s"] > 0 and row["sample_tokens_per_s"] > 0
    assert row["peak_rss_mib"] >= row["peak_rss_mib_before"] > 0
    assert row["anon_rss_mib_after_sampling"] is None or row["anon_rss_mib_after_sampling"] > 0
