"""Held-out masked-LM loss and accuracy, and the downstream fine-tune (genre of a Brown passage).

Held-out MLM uses one masking protocol for every model, whatever it was trained with: 15% of
the non-special tokens, all replaced by [MASK], with the same positions for every model (a fixed
seed). Loss and accuracy are averaged over all masked tokens.

Fine-tuning follows the paper's downstream recipe scaled down (released GLUE settings: AdamW,
lr 4e-5, batch 16, 5 epochs, 10% warmup then cosine decay, dropout 0.1, a tanh pooler on the
first token). What changes here is the amount of data, and the learning rate, which we raise to
1e-4 for models this small (fixed before any result; the same for pretrained and random init).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from .data import mask_tokens
from .model import MaskedLM, ModelConfig, SequenceClassifier


@torch.no_grad()
def evaluate_mlm(
    model: MaskedLM,
    seqs: torch.Tensor,
    *,
    rate: float = 0.15,
    seed: int = 1234,
    batch: int = 32,
    device: str = "cpu",
) -> tuple[float, float]:
    """(mean cross-entropy in nats per masked token, top-1 accuracy) on ``seqs``."""
    inputs, labels = mask_tokens(
        seqs,
        rate,
        torch.Generator().manual_seed(seed),
        vocab_size=model.cfg.vocab_size,
        rule_80_10_10=False,
    )
    was_training = model.training
    model.eval()
    total = correct = count = 0.0
    for i in range(0, len(seqs), batch):
        x, y = inputs[i : i + batch].to(device), labels[i : i + batch].to(device)
        keep = y.view(-1) != -100
        # decoder on the masked positions only, whatever the model trains with: same numbers
        hidden = model.encoder(x)  # (B, T, H)
        logits = model.logits(hidden.view(-1, hidden.shape[-1])[keep]).float()  # (M, V)
        target = y.view(-1)[keep]
        total += float(F.cross_entropy(logits, target, reduction="sum"))
        correct += float((logits.argmax(-1) == target).sum())
        count += float(keep.sum())
    model.train(was_training)
    return total / max(count, 1), correct / max(count, 1)


def unigram_loss(
    train: torch.Tensor,
    seqs: torch.Tensor,
    vocab_size: int,
    *,
    rate: float = 0.15,
    seed: int = 1234,
) -> float:
    """The held-out loss of a model that ignores context and predicts the training corpus's token
    frequencies (add-one smoothed), on the same masked positions as ``evaluate_mlm``: the line a
    masked LM must get below to have learned anything from context."""
    from repro.common.stats import unigram_entropy

    _, labels = mask_tokens(
        seqs, rate, torch.Generator().manual_seed(seed), vocab_size=vocab_size, rule_80_10_10=False
    )
    return unigram_entropy(train, vocab_size, labels[labels != -100])


@dataclass(frozen=True)
class FinetuneSettings:
    epochs: int = 5
    batch: int = 16
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup: float = 0.1  # fraction of the steps
    dropout: float = 0.1
    pooler: str = "mean"
    seed: int = 0
    device: str = "cpu"


def cosine_with_warmup(step: int, total: int, warmup: float) -> float:
    """lr factor: linear warmup over ``warmup``·total steps, then ½(1 + cos(π·progress)) down to 0."""
    w = max(1, int(round(warmup * total)))
    if step < w:
        return (step + 1) / w
    progress = (step - w) / max(1, total - w)
    return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def balanced_accuracy(pred: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean over classes of the recall of that class (chance is 1/classes whatever the balance)."""
    recalls = [(pred[labels == c] == c).float().mean().item() for c in labels.unique().tolist()]
    return sum(recalls) / len(recalls)


def finetune(
    model_cfg: ModelConfig,
    encoder_state: dict | None,
    train: tuple,
    test: tuple,
    num_labels: int,
    s: FinetuneSettings,
    log=None,
) -> dict:
    """Fine-tune a classifier from ``encoder_state`` (None: random initialisation) and return
    balanced accuracy on ``test`` with the training curve."""
    torch.manual_seed(s.seed)
    cfg = replace(model_cfg, dropout=s.dropout)
    clf = SequenceClassifier(cfg, num_labels, dropout=s.dropout, pooler=s.pooler).to(s.device)
    if encoder_state is not None:
        clf.encoder.load_state_dict(encoder_state)
    decay = [p for p in clf.parameters() if p.ndim >= 2]
    keep = [p for p in clf.parameters() if p.ndim < 2 and p.requires_grad]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": s.weight_decay}, {"params": keep, "weight_decay": 0.0}],
        lr=s.lr,
    )
    x, y = train
    gen = torch.Generator().manual_seed(s.seed)
    steps_per_epoch = math.ceil(len(x) / s.batch)
    total = s.epochs * steps_per_epoch
    curve, step = [], 0
    clf.train()
    for _ in range(s.epochs):
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), s.batch):
            idx = order[i : i + s.batch]
            for g in opt.param_groups:
                g["lr"] = s.lr * cosine_with_warmup(step, total, s.warmup)
            loss = F.cross_entropy(clf(x[idx].to(s.device)), y[idx].to(s.device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            curve.append(loss.item())
            step += 1
    clf.eval()
    preds = []
    with torch.no_grad():
        for i in range(0, len(test[0]), 64):
            preds.append(clf(test[0][i : i + 64].to(s.device)).argmax(-1).cpu())
    pred = torch.cat(preds)
    return {
        "balanced_accuracy": balanced_accuracy(pred, test[1]),
        "accuracy": (pred == test[1]).float().mean().item(),
        "train_loss_first": sum(curve[:steps_per_epoch]) / steps_per_epoch,
        "train_loss_last": sum(curve[-steps_per_epoch:]) / steps_per_epoch,
        "steps": step,
    }
