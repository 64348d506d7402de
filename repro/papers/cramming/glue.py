"""GLUE for a crammed encoder: task table, loader through ``datasets``, pair encoding, metrics.

The loader reads a task from

* a folder in the GLUE distribution's own layout (``train.tsv``, ``dev.tsv``; MNLI's
  ``dev_matched.tsv``; CoLA without a header row), read by the ``datasets`` "csv" builder with
  tab separators and no quoting, as the files are written;
* a folder of ``datasets``' Hub layout, ``<split>-*.parquet`` or ``<split>.jsonl`` /
  ``<split>.json`` files (``train``, ``validation``; MNLI ``validation_matched``);
* ``hf:glue`` (the Hub's ``nyu-mll/glue``), which needs a network this machine does not have.

Either way the rows come back with the Hub's column names and integer labels (STS-B: a float
score), so one fine-tuning path serves every source. Metrics are scikit-learn's and scipy's:
accuracy, F1 of the positive class (MRPC, QQP), Matthews correlation (CoLA), Pearson and
Spearman correlation (STS-B); ``score`` is GLUE's per-task number (the mean where the benchmark
averages two).

Inputs are ``[CLS] a [SEP]`` or ``[CLS] a [SEP] b [SEP]``, truncated longest-first to
``max_len`` and padded with [PAD] (attention mask 0). Our encoder has no segment embeddings; the
two sentences of a pair are told apart by [SEP] alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .data import CLS, PAD, SEP


@dataclass(frozen=True)
class GlueTask:
    name: str
    keys: tuple[str, str | None]  # text columns (Hub names); None: single sentence
    num_labels: int  # 1: regression
    metrics: tuple[str, ...]  # averaged into the task's GLUE score
    tsv_dir: str  # folder name in the GLUE distribution
    tsv_columns: dict[str, str]  # TSV column -> Hub column (text and label)
    tsv_header: tuple[str, ...] | None = None  # column names of a TSV without a header row
    label_names: tuple[str, ...] = ()  # TSV label strings in the Hub's id order
    validation: str = "validation"


GLUE_TASKS: dict[str, GlueTask] = {
    t.name: t
    for t in (
        GlueTask(
            "cola",
            ("sentence", None),
            2,
            ("matthews",),
            "CoLA",
            {"sentence": "sentence", "label": "label"},
            tsv_header=("source", "label", "original_label", "sentence"),
        ),
        GlueTask(
            "sst2",
            ("sentence", None),
            2,
            ("accuracy",),
            "SST-2",
            {"sentence": "sentence", "label": "label"},
        ),
        GlueTask(
            "mrpc",
            ("sentence1", "sentence2"),
            2,
            ("f1", "accuracy"),
            "MRPC",
            {"#1 String": "sentence1", "#2 String": "sentence2", "Quality": "label"},
        ),
        GlueTask(
            "qqp",
            ("question1", "question2"),
            2,
            ("f1", "accuracy"),
            "QQP",
            {"question1": "question1", "question2": "question2", "is_duplicate": "label"},
        ),
        GlueTask(
            "stsb",
            ("sentence1", "sentence2"),
            1,
            ("pearson", "spearman"),
            "STS-B",
            {"sentence1": "sentence1", "sentence2": "sentence2", "score": "label"},
        ),
        GlueTask(
            "mnli",
            ("premise", "hypothesis"),
            3,
            ("accuracy",),
            "MNLI",
            {"sentence1": "premise", "sentence2": "hypothesis", "gold_label": "label"},
            label_names=("entailment", "neutral", "contradiction"),
            validation="validation_matched",
        ),
        GlueTask(
            "qnli",
            ("question", "sentence"),
            2,
            ("accuracy",),
            "QNLI",
            {"question": "question", "sentence": "sentence", "label": "label"},
            label_names=("entailment", "not_entailment"),
        ),
        GlueTask(
            "rte",
            ("sentence1", "sentence2"),
            2,
            ("accuracy",),
            "RTE",
            {"sentence1": "sentence1", "sentence2": "sentence2", "label": "label"},
            label_names=("entailment", "not_entailment"),
        ),
        GlueTask(
            "wnli",
            ("sentence1", "sentence2"),
            2,
            ("accuracy",),
            "WNLI",
            {"sentence1": "sentence1", "sentence2": "sentence2", "label": "label"},
        ),
    )
}

_TSV_FILES = {
    "train": "train.tsv",
    "validation": "dev.tsv",
    "validation_matched": "dev_matched.tsv",
}


def get_task(name: str) -> GlueTask:
    key = name.lower().replace("-", "")
    if key not in GLUE_TASKS:
        raise ValueError(f"GLUE task {name!r}: choose one of {', '.join(GLUE_TASKS)}")
    return GLUE_TASKS[key]


def _datasets():
    try:
        import datasets
    except ImportError:
        raise ImportError(
            "GLUE loading needs the optional `datasets` package: pip install 'repro-papers[glue]'"
        ) from None
    return datasets


def load_glue(task: str, source: str | Path) -> dict:
    """{split: datasets.Dataset} with the task's Hub columns and integer labels (float for
    STS-B). ``source``: a folder (GLUE TSV, or parquet/json in the Hub's layout) or ``hf:glue``."""
    t = get_task(task)
    ds = _datasets()
    if str(source) == "hf:glue":
        got = ds.load_dataset("nyu-mll/glue", t.name)
        return {s: got[s] for s in ("train", t.validation)}
    root = Path(source).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"GLUE source {str(source)!r}: not a folder; give a folder of train.tsv/dev.tsv "
            "(or <split>.parquet/.jsonl files), or hf:glue"
        )
    sub = root / t.tsv_dir
    folder = sub if sub.is_dir() else root / t.name if (root / t.name).is_dir() else root
    if (folder / "train.tsv").exists():
        return _from_tsv(ds, t, folder)
    out = {}
    for split in ("train", t.validation):
        for kind, pattern in (("parquet", f"{split}*.parquet"), ("json", f"{split}.json*")):
            files = sorted(str(p) for p in folder.glob(pattern))
            if files:
                out[split] = ds.load_dataset(kind, data_files={split: files}, split=split)
                break
        else:
            raise FileNotFoundError(
                f"GLUE {t.name}: {folder} has no train.tsv and no {split}-*.parquet or "
                f"{split}.jsonl; expected GLUE's TSV files or the Hub's layout"
            )
        missing = [k for k in (*filter(None, t.keys), "label") if k not in out[split].column_names]
        if missing:
            raise KeyError(
                f"GLUE {t.name} {split}: columns {missing} are missing; found "
                f"{out[split].column_names}"
            )
    return out


def _from_tsv(ds, t: GlueTask, folder: Path) -> dict:
    out = {}
    for split in ("train", t.validation):
        path = folder / _TSV_FILES[split]
        if not path.exists():
            raise FileNotFoundError(f"GLUE {t.name}: {path} is missing")
        kw = {"column_names": list(t.tsv_header)} if t.tsv_header else {}
        d = ds.load_dataset(
            "csv",
            data_files={split: str(path)},
            split=split,
            delimiter="\t",
            quoting=3,  # csv.QUOTE_NONE: GLUE's TSVs contain bare quote characters
            keep_default_na=False,
            converters={c: str for c in t.tsv_columns},  # text and labels stay strings
            **kw,
        )
        missing = [c for c in t.tsv_columns if c not in d.column_names]
        if missing:
            raise KeyError(f"{path}: columns {missing} are missing; found {d.column_names}")
        d = d.select_columns(list(t.tsv_columns)).rename_columns(
            {k: v for k, v in t.tsv_columns.items() if k != v}
        )
        # a new column (the string one's type would otherwise be kept), then renamed back
        d = d.map(
            lambda row, t=t, p=path: {"_label": _label(t, row["label"], p)},
            remove_columns=["label"],
        ).rename_column("_label", "label")
        out[split] = d
    return out


def _label(t: GlueTask, raw: str, path: Path):
    raw = str(raw).strip()
    if t.num_labels == 1:
        return float(raw)
    if t.label_names:
        if raw not in t.label_names:
            raise ValueError(f"{path}: label {raw!r} is not one of {', '.join(t.label_names)}")
        return t.label_names.index(raw)
    value = int(raw)
    if not 0 <= value < t.num_labels:
        raise ValueError(f"{path}: label {raw!r} is outside 0..{t.num_labels - 1}")
    return value


# --------------------------------------------------------------------------- encoding
def encode_pairs(tokenizer, first: list[str], second: list[str] | None, max_len: int = 128):
    """(ids, attention_mask) int64 tensors of shape (N, L), L = the longest row (≤ max_len):
    [CLS] a [SEP] (b [SEP]), the longer side cut first when the pair does not fit."""
    import torch

    enc_a = [e.ids for e in tokenizer.encode_batch(first, add_special_tokens=False)]
    enc_b = (
        [e.ids for e in tokenizer.encode_batch(second, add_special_tokens=False)]
        if second is not None
        else [None] * len(enc_a)
    )
    rows = []
    for a, b in zip(enc_a, enc_b, strict=True):
        a = list(a)
        if b is None:
            rows.append([CLS, *a[: max_len - 2], SEP])
            continue
        b = list(b)
        while len(a) + len(b) > max_len - 3:
            (a if len(a) >= len(b) else b).pop()
        rows.append([CLS, *a, SEP, *b, SEP])
    L = max(len(r) for r in rows)
    ids = torch.full((len(rows), L), PAD, dtype=torch.long)
    mask = torch.zeros((len(rows), L), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids, mask


def encode_split(tokenizer, task: str, rows, max_len: int = 128):
    """(ids, attention_mask, labels) of one loaded split."""
    import torch

    t = get_task(task)
    a, b = t.keys
    ids, mask = encode_pairs(tokenizer, list(rows[a]), list(rows[b]) if b else None, max_len)
    dtype = torch.float32 if t.num_labels == 1 else torch.long
    return ids, mask, torch.tensor(list(rows["label"]), dtype=dtype)


# --------------------------------------------------------------------------- metrics
def glue_metrics(task: str, predictions, labels) -> dict[str, float]:
    """The task's GLUE metrics (scikit-learn, scipy) and ``score``, their mean."""
    import numpy as np

    t = get_task(task)
    p, y = np.asarray(predictions), np.asarray(labels)
    out: dict[str, float] = {}
    if t.num_labels == 1:
        from scipy import stats

        out["pearson"] = float(stats.pearsonr(p, y).statistic)
        out["spearman"] = float(stats.spearmanr(p, y).statistic)
    else:
        from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

        out["accuracy"] = float(accuracy_score(y, p))
        if "f1" in t.metrics:
            out["f1"] = float(f1_score(y, p))
        if "matthews" in t.metrics:
            out["matthews"] = float(matthews_corrcoef(y, p))
    out["score"] = float(np.mean([out[m] for m in t.metrics]))
    return out
