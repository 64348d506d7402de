"""Genre classification of Brown corpus passages: a real text classification task that fits
on a CPU. Documents are split (never a document on both sides) before passages are cut, so a
test passage never shares a text with a training one."""

from __future__ import annotations

import torch

from repro.common.data import load_brown, split_documents, train_tokenizer

# The 15 Brown genres folded into four coarse classes of similar size (docs: 88, 126, 110,
# 176): press, imaginative prose, learned and official prose, general non-fiction.
GENRE_GROUPS = {
    "press": ("news", "editorial", "reviews"),
    "fiction": ("fiction", "adventure", "romance", "mystery", "humor", "science_fiction"),
    "learned": ("learned", "government"),
    "general": ("belles_lettres", "lore", "hobbies", "religion"),
}
CLASSES = tuple(GENRE_GROUPS)
GENRE_TO_CLASS = {g: CLASSES.index(c) for c, gs in GENRE_GROUPS.items() for g in gs}


def passages(tok, docs, seq_len: int, max_per_doc: int | None = None):
    """Non-overlapping windows of ``seq_len`` token ids from each document, with its class."""
    xs, ys = [], []
    for enc, doc in zip(tok.encode_batch([d.text for d in docs]), docs):
        ids = enc.ids
        n = len(ids) // seq_len
        if max_per_doc is not None:
            n = min(n, max_per_doc)
        for i in range(n):
            xs.append(ids[i * seq_len : (i + 1) * seq_len])
            ys.append(GENRE_TO_CLASS[doc.genre])
    return torch.tensor(xs, dtype=torch.long), torch.tensor(ys, dtype=torch.long)


def genre_dataset(
    vocab_size: int,
    seq_len: int,
    max_per_doc: int | None = None,
    seed: int = 0,
    dev: float = 0.0,
):
    """(x_train, y_train, x_dev, y_dev, x_test, y_test): BPE trained on the training documents
    only. ``dev`` > 0 holds out that share of the training documents (again whole documents,
    stratified by genre) for choosing hyper-parameters, so that the test passages are never
    looked at before the final score; with ``dev`` = 0 the dev tensors are empty."""
    train_docs, test_docs = split_documents(load_brown(), held_out=0.1, seed=seed)
    dev_docs: list = []
    if dev > 0:
        train_docs, dev_docs = split_documents(train_docs, held_out=dev, seed=seed + 1)
    tok = train_tokenizer(train_docs, kind="bpe", vocab_size=vocab_size)
    xtr, ytr = passages(tok, train_docs, seq_len, max_per_doc)
    if dev_docs:
        xdev, ydev = passages(tok, dev_docs, seq_len)
    else:
        xdev = torch.zeros((0, seq_len), dtype=torch.long)
        ydev = torch.zeros((0,), dtype=torch.long)
    xte, yte = passages(tok, test_docs, seq_len)
    return xtr, ytr, xdev, ydev, xte, yte
