"""A data path for a corpus larger than memory: tokenise once into memory-mapped shards, then draw
batches in O(batch) work per step.

* **Streaming tokenisation.** Documents arrive from any iterable of strings (a generator over a
  web corpus, ``datasets`` in streaming mode, a folder); they are tokenised ``batch_docs`` at a
  time and appended to the current shard file as ``uint16`` (vocabulary ≤ 65536) or ``uint32``,
  with [SEP] after each document. Memory holds one batch of documents and its ids, never the
  corpus.
* **The authors' filtering, as options** (Geiping & Goldstein 2022, §4.4 and the released data
  pipeline): drop a document whose tokenizer *compression* is poor (more than
  ``max_tokens_per_char`` tokens per character: text the tokenizer was not trained for, tables,
  code, other scripts), and drop exact duplicates (``dedup``: an 8-byte hash of the whitespace-
  and case-normalised text; the set of hashes, 8 bytes a document, is the only state that
  grows with the corpus).
* **Written once, atomically.** Shards go to ``<dir>.tmp-<pid>/``; the manifest (token counts,
  dtype, tokenizer and filter fingerprint) is written last, then the folder is renamed into
  place. A folder with a manifest whose fingerprint matches is reused as it is; a half-written
  one is never mistaken for a finished one.
* **O(1) per sequence sampling.** ``ShardedTokens`` maps window i to (shard, offset) with a
  binary search over the shards' window counts and reads ``seq_len − 1`` tokens from the memory
  map ([CLS] in front, as ``data.pack_documents`` does); with ``train.batch_rows`` (an affine
  permutation per epoch) drawing a batch costs the same at 1M or 100B tokens.
* **A tokenizer trained on a sample**: ``train_tokenizer_on_sample`` reads the first
  ``sample_docs`` documents of the stream (the paper trains its WordPiece on a subset too).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .data import CLS, SEP

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class FilterSettings:
    max_tokens_per_char: float | None = None  # the authors' threshold: 0.3
    dedup: bool = False
    min_tokens: int = 1  # drop documents shorter than this (after tokenisation)


def dtype_for(vocab_size: int) -> np.dtype:
    if vocab_size <= 0:
        raise ValueError(f"vocab_size={vocab_size}: must be positive")
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


def _norm_hash(text: str) -> bytes:
    return hashlib.blake2b(
        re.sub(r"\s+", " ", text).strip().lower().encode(), digest_size=8
    ).digest()


def fingerprint(tokenizer, filters: FilterSettings, source: str) -> str:
    h = hashlib.sha256(tokenizer.to_str().encode())
    h.update(json.dumps(asdict(filters), sort_keys=True).encode())
    h.update(source.encode())
    return h.hexdigest()[:16]


def prepare_shards(
    texts: Iterable[str],
    tokenizer,
    out_dir: str | Path,
    *,
    source: str,
    filters: FilterSettings = FilterSettings(),
    shard_tokens: int = 1 << 26,
    batch_docs: int = 512,
    max_tokens: int | None = None,
) -> dict:
    """Tokenise ``texts`` into ``out_dir/shard-00000.bin`` ... and return the manifest; reuse
    ``out_dir`` when its manifest matches (``source`` names the stream for the fingerprint).
    ``max_tokens`` stops after that many tokens have been written."""
    out = Path(out_dir)
    key = fingerprint(tokenizer, filters, f"{source}|{max_tokens}")
    found = read_manifest(out)
    if found is not None and found["fingerprint"] == key:
        return found
    vocab = tokenizer.get_vocab_size()
    dtype = dtype_for(vocab)
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    seen: set[bytes] = set()
    stats = {"documents": 0, "kept": 0, "dropped_compression": 0, "dropped_duplicate": 0}
    stats["dropped_short"] = 0
    shards: list[dict] = []
    total = 0
    fh, in_shard = None, 0

    def open_shard():
        name = f"shard-{len(shards):05d}.bin"
        shards.append({"file": name, "tokens": 0})
        return open(tmp / name, "wb")

    try:
        fh = open_shard()
        for batch in _batches(texts, batch_docs):
            stats["documents"] += len(batch)
            if filters.dedup:
                kept = []
                for t in batch:
                    h = _norm_hash(t)
                    if h in seen:
                        stats["dropped_duplicate"] += 1
                    else:
                        seen.add(h)
                        kept.append(t)
                batch = kept
            if not batch:
                continue
            for text, enc in zip(batch, tokenizer.encode_batch(batch, add_special_tokens=False)):
                ids = enc.ids
                if len(ids) < filters.min_tokens:
                    stats["dropped_short"] += 1
                    continue
                if filters.max_tokens_per_char is not None and len(
                    ids
                ) > filters.max_tokens_per_char * max(len(text), 1):
                    stats["dropped_compression"] += 1
                    continue
                arr = np.asarray(ids + [SEP], dtype=dtype)
                if max_tokens is not None:
                    arr = arr[: max_tokens - total]
                pos = 0
                while pos < len(arr):  # a document may straddle two shards
                    room = shard_tokens - in_shard
                    if room == 0:
                        fh.close()
                        fh, in_shard = open_shard(), 0
                        continue
                    part = arr[pos : pos + room]
                    part.tofile(fh)
                    in_shard += len(part)
                    shards[-1]["tokens"] += len(part)
                    pos += len(part)
                total += len(arr)
                stats["kept"] += 1
                if max_tokens is not None and total >= max_tokens:
                    break
            if max_tokens is not None and total >= max_tokens:
                break
    finally:
        if fh is not None:
            fh.close()
    if shards and shards[-1]["tokens"] == 0:
        (tmp / shards.pop()["file"]).unlink()
    manifest = {
        "fingerprint": key,
        "source": source,
        "vocab_size": vocab,
        "dtype": dtype.name,
        "tokens": total,
        "shards": shards,
        "filters": asdict(filters),
        **stats,
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")  # last: marks it complete
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(out)
    return manifest


def _batches(texts: Iterable[str], n: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for t in texts:
        if not isinstance(t, str):
            raise TypeError(f"documents must be strings, got {type(t).__name__}")
        batch.append(t)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def read_manifest(folder: str | Path) -> dict | None:
    path = Path(folder) / MANIFEST
    if not path.exists():
        return None
    return json.loads(path.read_text())


class ShardedTokens:
    """Fixed-length training windows over memory-mapped shards, indexed like the (N, T) tensor
    ``data.pack_documents`` returns: ``len()``, ``.shape`` and ``[rows]`` (a LongTensor)."""

    def __init__(self, folder: str | Path, seq_len: int):
        self.folder = Path(folder)
        m = read_manifest(self.folder)
        if m is None:
            raise FileNotFoundError(
                f"{self.folder}: no {MANIFEST}; prepare the shards first (prepare_shards)"
            )
        if seq_len < 2:
            raise ValueError(f"seq_len={seq_len}: needs room for [CLS] and one token")
        self.seq_len, self.body = seq_len, seq_len - 1
        self.vocab_size = m["vocab_size"]
        self.maps = [
            np.memmap(self.folder / s["file"], dtype=m["dtype"], mode="r", shape=(s["tokens"],))
            for s in m["shards"]
        ]
        counts = np.array([len(a) // self.body for a in self.maps], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(counts)])  # window index where shard s starts
        if self.starts[-1] == 0:
            raise ValueError(f"{self.folder}: {m['tokens']} tokens make no window of {seq_len}")

    def __len__(self) -> int:
        return int(self.starts[-1])

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self), self.seq_len)

    def __getitem__(self, rows):
        import torch

        idx = np.asarray(torch.as_tensor(rows).reshape(-1), dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"window index out of range 0..{len(self) - 1}")
        shard = np.searchsorted(self.starts, idx, side="right") - 1
        out = np.empty((len(idx), self.seq_len), dtype=np.int64)
        out[:, 0] = CLS
        for j, (s, i) in enumerate(zip(shard, idx)):
            off = (i - self.starts[s]) * self.body
            out[j, 1:] = self.maps[s][off : off + self.body]
        return torch.from_numpy(out)


def train_tokenizer_on_sample(texts: Iterable[str], *, vocab_size: int, sample_docs: int = 2000):
    """A lowercase WordPiece tokenizer (the project's ``train_tokenizer``) trained on the first
    ``sample_docs`` documents of the stream."""
    from repro.common.data import Document, train_tokenizer

    sample = []
    for i, t in enumerate(texts):
        if i >= sample_docs:
            break
        sample.append(Document(f"sample-{i}", "sample", t))
    if len(sample) < 1:
        raise ValueError("the tokenizer sample is empty: the text stream gave no documents")
    return train_tokenizer(sample, kind="wordpiece", vocab_size=vocab_size, lowercase=True)
