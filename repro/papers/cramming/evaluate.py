"""Held-out masked-LM loss and accuracy, and fine-tuning (the Brown genre task, GLUE).

Held-out MLM uses one masking protocol for every model, whatever it was trained with: 15% of
the non-special tokens, all replaced by [MASK], with the same positions for every model (a fixed
seed). Loss and accuracy are averaged over all masked tokens.

Fine-tuning: ``GLUE_SETTINGS`` are the authors' released GLUE settings (the cramming repository's
``eval/GLUE_sane.yaml`` and ``eval/optim/adam.yaml``): AdamW with lr 4e-5, β (0.9, 0.98), ε 1e-6,
no weight decay, batch 16, 5 epochs, 10% linear warmup then cosine decay to zero, dropout 0.1,
and a dense+tanh pooler on the first ([CLS]) token. The CPU genre task keeps their epochs,
batch, schedule, optimiser and dropout, and changes two things, both set in
``repro.papers.cramming.Config`` before any result and the same for every encoder: the learning
rate (``finetune_lr``, 1e-3: at 4e-5 a randomly initialised model this small does not move in a
few hundred steps) and the pooler (``finetune_pooler``, mean over the real tokens: a 128-token
passage's genre is a property of all its words, not of a [CLS] that a short pretraining has not
taught to summarise).
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
    lr: float = 4e-5
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    weight_decay: float = 0.0
    warmup: float = 0.1  # fraction of the steps, then cosine decay to zero
    dropout: float = 0.1
    pooler: str = "cls"
    seed: int = 0
    device: str = "cpu"


# The authors' released GLUE fine-tuning settings (see the module docstring).
GLUE_SETTINGS = FinetuneSettings()


def cosine_with_warmup(step: int, total: int, warmup: float) -> float:
    """lr factor: linear warmup over ``warmup``·total steps, then ½(1 + cos(π·progress)) down to 0."""
    w = max(1, int(round(warmup * total)))
    if step < w:
        return (step + 1) / w
    progress = (step - w) / max(1, total - w)
    return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def balanced_accuracy(pred: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean over classes of the recall of that class (chance is 1/classes whatever the balance);
    scikit-learn's ``balanced_accuracy_score``."""
    from sklearn.metrics import balanced_accuracy_score

    return float(balanced_accuracy_score(labels.numpy(), pred.numpy()))


def _unpack(data: tuple) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """(ids, labels) or (ids, attention_mask, labels)."""
    if len(data) == 2:
        return data[0], None, data[1]
    if len(data) == 3:
        return data
    raise ValueError(
        f"fine-tuning data: give (ids, labels) or (ids, mask, labels), not {len(data)} tensors"
    )


def finetune(
    model_cfg: ModelConfig,
    encoder_state: dict | None,
    train: tuple,
    test: tuple,
    num_labels: int,
    s: FinetuneSettings,
    log=None,
) -> dict:
    """Fine-tune a classifier (``num_labels=1``: a regressor, MSE) from ``encoder_state`` (None:
    random initialisation) and return its test predictions, balanced accuracy (classification)
    and the training curve's first and last epoch."""
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
        betas=s.betas,
        eps=s.eps,
    )
    x, m, y = _unpack(train)
    tx, tm, ty = _unpack(test)
    regression = num_labels == 1

    def loss_fn(out, target):
        if regression:
            return F.mse_loss(out.squeeze(-1).float(), target.float())
        return F.cross_entropy(out, target)

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
            mask = m[idx].to(s.device) if m is not None else None
            loss = loss_fn(clf(x[idx].to(s.device), mask), y[idx].to(s.device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            curve.append(loss.item())
            step += 1
    clf.eval()
    preds = []
    with torch.no_grad():
        for i in range(0, len(tx), 64):
            mask = tm[i : i + 64].to(s.device) if tm is not None else None
            out = clf(tx[i : i + 64].to(s.device), mask).float().cpu()
            preds.append(out.squeeze(-1) if regression else out.argmax(-1))
    pred = torch.cat(preds)
    res = {
        "predictions": pred.tolist(),
        "train_loss_first": sum(curve[:steps_per_epoch]) / steps_per_epoch,
        "train_loss_last": sum(curve[-steps_per_epoch:]) / steps_per_epoch,
        "steps": step,
    }
    if not regression:
        res["balanced_accuracy"] = balanced_accuracy(pred, ty)
        res["accuracy"] = (pred == ty).float().mean().item()
    return res


def finetune_glue(
    model_cfg: ModelConfig,
    encoder_state: dict | None,
    tokenizer,
    task: str,
    splits: dict,
    s: FinetuneSettings = GLUE_SETTINGS,
    max_len: int = 128,
) -> dict:
    """Fine-tune on a loaded GLUE task (``glue.load_glue``) and score its validation split with
    the task's GLUE metrics."""
    from .glue import encode_split, get_task, glue_metrics

    t = get_task(task)
    train = encode_split(tokenizer, t.name, splits["train"], max_len)
    val = encode_split(tokenizer, t.name, splits[t.validation], max_len)
    out = finetune(model_cfg, encoder_state, train, val, t.num_labels, s)
    return {**glue_metrics(t.name, out["predictions"], val[2].tolist()), "steps": out["steps"]}
