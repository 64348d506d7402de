"""Real English text for the language-modelling reproductions, and tokenizers trained on it.

The default corpus is the Brown Corpus shipped in ``repro/data/brown.jsonl.gz`` (500 texts,
~1.01M words, 15 genres; see ``repro/data/LICENSE-brown.md``). Other text can come from
local files or folders (``load_texts``) or, where the Hugging Face hub is reachable, a
``datasets`` name (streamed).

Tokenizers are trained with the ``tokenizers`` library and cached under
``~/.cache/repro/tokenizers`` keyed by corpus, kind and size, so a second run reuses them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from repro.paths import cache_dir

BROWN = "brown"


@dataclass(frozen=True)
class Document:
    id: str
    genre: str
    text: str  # paragraphs separated by a blank line


def load_brown() -> list[Document]:
    """The 500 Brown Corpus texts, in file order (ca01 ... cr09)."""
    path = resources.files("repro") / "data" / "brown.jsonl.gz"
    docs = []
    with resources.as_file(path) as p, gzip.open(p, "rt", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            docs.append(Document(rec["id"], rec["genre"], "\n\n".join(rec["paragraphs"])))
    return docs


def split_documents(
    docs: Sequence[Document], held_out: float = 0.1, seed: int = 0
) -> tuple[list[Document], list[Document]]:
    """Split by whole documents (never inside one), stratified by genre so both sides see
    every genre. Deterministic for a given seed."""
    rng = random.Random(seed)
    by_genre: dict[str, list[Document]] = {}
    for d in docs:
        by_genre.setdefault(d.genre, []).append(d)
    train, test = [], []
    for genre in sorted(by_genre):
        group = list(by_genre[genre])
        rng.shuffle(group)
        n_test = max(1, round(len(group) * held_out))
        test += group[:n_test]
        train += group[n_test:]
    return train, test


def load_texts(
    source: str | Path, *, text_field: str = "text", limit: int | None = None, split: str = "train"
) -> list[Document]:
    """Documents from a local ``.txt``/``.md`` file, a folder of them, or a ``datasets`` name.

    * a file: one document (blank-line paragraphs kept)
    * a folder: every ``*.txt`` and ``*.md`` below it, one document each, sorted by path
    * ``hf:<name>[:<config>]``: a Hugging Face dataset, streamed; ``limit`` caps documents
    """
    src = str(source)
    if src == BROWN:
        return load_brown()
    if src.startswith("hf:"):
        return _load_hf(src[3:], text_field=text_field, limit=limit, split=split)
    path = Path(src).expanduser()
    if path.is_file():
        return [Document(path.stem, "local", path.read_text(encoding="utf-8", errors="replace"))]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in {".txt", ".md"} and p.is_file())
        if not files:
            raise FileNotFoundError(f"{path}: no .txt or .md files in this folder")
        return [
            Document(
                str(p.relative_to(path)), "local", p.read_text(encoding="utf-8", errors="replace")
            )
            for p in files[:limit]
        ]
    raise FileNotFoundError(
        f"corpus {src!r}: not a file or folder; use 'brown', a path, or 'hf:<dataset name>'"
    )


def _load_hf(spec: str, *, text_field: str, limit: int | None, split: str) -> list[Document]:
    """Stream a ``datasets`` corpus. ``spec`` is ``name`` or ``name:config``; a local builder
    such as ``text`` takes ``data_files`` via ``text:<glob>``."""
    try:
        import datasets
    except ImportError as e:  # pragma: no cover - optional dependency
        raise ImportError("hf: corpora need `pip install datasets`") from e
    name, _, config = spec.partition(":")
    if name in {"text", "json", "csv"}:
        ds = datasets.load_dataset(name, data_files=config, split=split, streaming=True)
    else:
        ds = datasets.load_dataset(name, config or None, split=split, streaming=True)
    docs = []
    for i, row in enumerate(ds):
        if limit is not None and i >= limit:
            break
        text = row.get(text_field)
        if not isinstance(text, str):
            raise KeyError(
                f"hf:{spec}: rows have no text field {text_field!r}; fields: {sorted(row)}"
            )
        if text.strip():
            docs.append(Document(f"{name}-{i}", "hf", text))
    return docs


# --------------------------------------------------------------------------- tokenizers
def _corpus_key(docs: Sequence[Document]) -> str:
    h = hashlib.sha256()
    for d in docs:
        h.update(d.id.encode())
        h.update(str(len(d.text)).encode())
    return h.hexdigest()[:12]


def train_tokenizer(
    docs: Sequence[Document],
    *,
    kind: str = "bpe",
    vocab_size: int = 4096,
    lowercase: bool = False,
    cache: bool = True,
):
    """A ``tokenizers.Tokenizer`` trained on ``docs``; cached on disk.

    kind: ``"bpe"`` (byte-level BPE, GPT-style) or ``"wordpiece"`` (BERT-style; lower-cased
    and accent-stripped when ``lowercase``). Special tokens: ``[PAD]`` = 0, ``[UNK]``,
    ``[CLS]``, ``[SEP]``, ``[MASK]``, ``[EOS]``.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    if kind not in {"bpe", "wordpiece"}:
        raise ValueError(f"tokenizer kind {kind!r}: use 'bpe' or 'wordpiece'")
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[EOS]"]
    key = f"{kind}-{vocab_size}-{'lc' if lowercase else 'cased'}-{_corpus_key(docs)}"
    path = cache_dir() / "tokenizers" / f"{key}.json"
    if cache and path.exists():
        return Tokenizer.from_file(str(path))
    if kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token="[UNK]"))
        norms = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
        tok.normalizer = normalizers.Sequence(norms)
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
    else:
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(
            lowercase=lowercase, strip_accents=lowercase, clean_text=True
        )
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size, special_tokens=specials, show_progress=False
        )
    tok.train_from_iterator((d.text for d in docs), trainer=trainer, length=len(docs))
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tok.save(str(tmp))
        tmp.replace(path)
    return tok


def encode_documents(tok, docs: Iterable[Document], eos: bool = True) -> list[int]:
    """All documents' token ids in one stream, each document followed by ``[EOS]``."""
    eos_id = tok.token_to_id("[EOS]")
    docs = list(docs)
    out: list[int] = []
    for enc in tok.encode_batch([d.text for d in docs]):
        out.extend(enc.ids)
        if eos:
            out.append(eos_id)
    return out


def lm_token_streams(
    *,
    vocab_size: int = 4096,
    kind: str = "bpe",
    lowercase: bool = False,
    held_out: float = 0.1,
    seed: int = 0,
    max_docs: int | None = None,
):
    """(train_ids, val_ids, tokenizer) for the Brown Corpus as 1-D int64 tensors.

    The tokenizer is trained on the training documents only. ``max_docs`` keeps a
    genre-stratified subset for fast runs. Encoded streams are cached beside the tokenizer.
    """
    import numpy as np
    import torch

    docs = load_brown()
    train, val = split_documents(docs, held_out=held_out, seed=seed)
    if max_docs is not None:
        keep = max(2, int(max_docs * (1 - held_out)))
        train = _stratified_head(train, keep)
        val = _stratified_head(val, max(1, max_docs - keep))
    tok = train_tokenizer(train, kind=kind, vocab_size=vocab_size, lowercase=lowercase)
    key = f"{kind}-{vocab_size}-{lowercase}-{_corpus_key(train)}-{_corpus_key(val)}"
    path = cache_dir() / "streams" / f"{key}.npz"
    if path.exists():
        z = np.load(path)
        tr, va = z["train"], z["val"]
    else:
        tr = np.asarray(encode_documents(tok, train), dtype=np.int64)
        va = np.asarray(encode_documents(tok, val), dtype=np.int64)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, train=tr, val=va)
        tmp.replace(path)
    return torch.from_numpy(tr), torch.from_numpy(va), tok


def _stratified_head(docs: Sequence[Document], n: int) -> list[Document]:
    """Round-robin over genres so a small subset still mixes genres."""
    by_genre: dict[str, list[Document]] = {}
    for d in docs:
        by_genre.setdefault(d.genre, []).append(d)
    out: list[Document] = []
    queues = [list(v) for _, v in sorted(by_genre.items())]
    while len(out) < n and any(queues):
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop(0))
    return out


def random_windows(ids, batch_size: int, seq_len: int, generator=None) -> Iterator[Any]:
    """Endless (x, y) batches of contiguous windows: y is x shifted by one token."""
    import torch

    n = len(ids) - seq_len - 1
    if n <= 0:
        raise ValueError(f"token stream of {len(ids)} is shorter than seq_len+1={seq_len + 1}")
    while True:
        starts = torch.randint(0, n, (batch_size,), generator=generator)
        idx = starts[:, None] + torch.arange(seq_len + 1)
        chunk = ids[idx]
        yield chunk[:, :-1], chunk[:, 1:]


def sequential_windows(ids, batch_size: int, seq_len: int, max_batches: int | None = None):
    """Non-overlapping (x, y) windows covering the stream in order, for evaluation."""
    import torch

    n_win = (len(ids) - 1) // seq_len
    if max_batches is not None:
        n_win = min(n_win, max_batches * batch_size)
    xs = torch.stack([ids[i * seq_len : i * seq_len + seq_len] for i in range(n_win)])
    ys = torch.stack([ids[i * seq_len + 1 : i * seq_len + seq_len + 1] for i in range(n_win)])
    for i in range(0, n_win, batch_size):
        yield xs[i : i + batch_size], ys[i : i + batch_size]
