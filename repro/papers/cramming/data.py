"""Corpus, WordPiece tokenizer, packing into fixed-length sequences, and masking.

* Corpus: the shipped Brown corpus by default; a local file or folder, or ``hf:<dataset>`` (any
  spec ``repro.common.data.load_texts`` takes; ``hf:text:<glob>`` reads local files through the
  ``datasets`` "text" builder, the same code path as a hub corpus).
* Held-out text is split off by whole documents before the tokenizer is trained.
* Packing: documents are joined with [SEP] into one stream, cut into windows of T−1 tokens and
  each window starts with [CLS], so position 0 is always [CLS] for the downstream classifier.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from repro.common.data import Document, load_brown, load_texts, split_documents, train_tokenizer
from repro.paths import cache_dir

PAD, UNK, CLS, SEP, MASK, EOS = range(6)  # ids of the specials train_tokenizer puts first
N_SPECIAL = 6


@dataclass
class Corpus:
    train_docs: list[Document]
    val_docs: list[Document]
    tokenizer: object

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()


def load_corpus(
    spec: str = "brown", *, vocab_size: int = 4096, held_out: float = 0.1, seed: int = 0
) -> Corpus:
    docs = load_brown() if spec == "brown" else load_texts(spec)
    if len(docs) < 2:
        raise ValueError(
            f"corpus {spec!r} has {len(docs)} document(s); a held-out split needs two or more"
        )
    train, val = split_documents(docs, held_out=held_out, seed=seed)
    tok = train_tokenizer(train, kind="wordpiece", vocab_size=vocab_size, lowercase=True)
    ids = [tok.token_to_id(s) for s in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[EOS]")]
    if ids != list(range(N_SPECIAL)):
        raise RuntimeError(f"tokenizer specials are at {ids}, expected 0..5")
    return Corpus(train, val, tok)


def _key(tok, docs) -> str:
    h = hashlib.sha256(tok.to_str().encode())
    for d in docs:
        h.update(d.id.encode())
        h.update(str(len(d.text)).encode())
    return h.hexdigest()[:16]


def encode_documents(tok, docs: list[Document], cache: bool = True) -> list[torch.Tensor]:
    """Token ids of each document (int64 tensors), cached on disk: encoding the Brown corpus
    takes seconds on one thread, every run needs it twice (pretraining and the genre task)."""
    path = cache_dir() / "cramming" / "encoded" / f"{_key(tok, docs)}.pt"
    if cache and path.exists():
        z = torch.load(path)
        return list(torch.split(z["flat"], z["lengths"].tolist()))
    encoded = [
        torch.tensor(e.ids, dtype=torch.long) for e in tok.encode_batch([d.text for d in docs])
    ]
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(
            {
                "flat": torch.cat(encoded) if encoded else torch.zeros(0, dtype=torch.long),
                "lengths": torch.tensor([len(e) for e in encoded]),
            },
            tmp,
        )
        tmp.replace(path)
    return encoded


def pack_documents(encoded: list[torch.Tensor], seq_len: int) -> torch.Tensor:
    """(N, seq_len) int64: [CLS] + seq_len−1 tokens of the [SEP]-joined stream; the last partial
    window is dropped."""
    sep = torch.tensor([SEP])
    stream = torch.cat([t for e in encoded for t in (e, sep)])
    body = seq_len - 1
    n = len(stream) // body
    if n == 0:
        raise ValueError(f"{len(stream)} tokens make no window of {seq_len}")
    windows = stream[: n * body].view(n, body)  # (N, T−1)
    return torch.cat([torch.full((n, 1), CLS, dtype=torch.long), windows], dim=1)  # (N, T)


def masked_count(rate: float, seq_len: int) -> int:
    """Masked tokens per sequence under exact masking: rate × (T − 1) rounded ([CLS] excluded)."""
    return max(1, round(rate * (seq_len - 1)))


def mask_tokens(
    ids: torch.Tensor,
    rate: float,
    generator: torch.Generator,
    *,
    vocab_size: int,
    rule_80_10_10: bool = True,
    exact: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: each non-special token is chosen with probability ``rate``; a chosen
    token becomes [MASK] (80%), a random word (10%) or stays (10%); without the rule every
    chosen token becomes [MASK]. Returns (inputs, labels) with labels −100 where not chosen.

    ``exact=True`` chooses exactly ``masked_count(rate, T)`` of each row's non-special tokens
    (all of them if a row has fewer), the static count that sparse prediction under
    ``torch.compile`` needs."""
    eligible = ids >= N_SPECIAL
    if exact:
        k = masked_count(rate, ids.shape[-1])
        score = torch.rand(ids.shape, generator=generator).masked_fill(~eligible, -1.0)
        pick = score.topk(k, dim=-1).indices
        chosen = torch.zeros_like(eligible).scatter_(-1, pick, True) & eligible
    else:
        chosen = (torch.rand(ids.shape, generator=generator) < rate) & eligible
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    inputs = ids.clone()
    if rule_80_10_10:
        u = torch.rand(ids.shape, generator=generator)
        randoms = torch.randint(N_SPECIAL, vocab_size, ids.shape, generator=generator)
        inputs = torch.where(chosen & (u < 0.8), torch.full_like(ids, MASK), inputs)
        inputs = torch.where(chosen & (u >= 0.8) & (u < 0.9), randoms, inputs)
    else:
        inputs = torch.where(chosen, torch.full_like(ids, MASK), inputs)
    return inputs, labels


# --------------------------------------------------------------------------- downstream task
# The Brown corpus's 15 genres in three groups: its own top-level split into "informative" and
# "imaginative" prose, with the press genres (A–C) taken out of the informative side. 128 tokens
# of a small model cannot tell apart genres such as "lore" and "belles lettres" reliably, and
# several genres have 6–9 texts, too few to hold out by document; three groups of 88–286 texts
# keep every class present on both sides of the document split.
GENRE_GROUPS = {
    "press": ("news", "editorial", "reviews"),
    "nonfiction": ("religion", "hobbies", "lore", "belles_lettres", "government", "learned"),
    "fiction": ("fiction", "mystery", "science_fiction", "adventure", "romance", "humor"),
}
GROUP_OF = {g: i for i, (_, genres) in enumerate(GENRE_GROUPS.items()) for g in genres}


def genre_passages(
    encoded: list[torch.Tensor], docs: list[Document], seq_len: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every document cut into windows of seq_len−1 tokens ([CLS] first), labelled with its genre
    group. Windows never cross documents, so a passage's label is its own document's."""
    rows, labels = [], []
    body = seq_len - 1
    for d, ids in zip(docs, encoded, strict=True):
        if d.genre not in GROUP_OF:
            raise KeyError(f"document {d.id}: genre {d.genre!r} is in no group of GENRE_GROUPS")
        n = len(ids) // body
        if n:
            w = ids[: n * body].view(n, body)  # (n, T−1)
            rows.append(torch.cat([torch.full((n, 1), CLS, dtype=torch.long), w], dim=1))
            labels += [GROUP_OF[d.genre]] * n
    return torch.cat(rows), torch.tensor(labels, dtype=torch.long)


def balanced_subset(
    ids: torch.Tensor, labels: torch.Tensor, per_class: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``per_class`` random passages of every class, shuffled together."""
    pick = []
    for c in labels.unique().tolist():
        idx = (labels == c).nonzero().view(-1)
        idx = idx[torch.randperm(len(idx), generator=generator)[:per_class]]
        pick.append(idx)
    order = torch.cat(pick)
    order = order[torch.randperm(len(order), generator=generator)]
    return ids[order], labels[order]
