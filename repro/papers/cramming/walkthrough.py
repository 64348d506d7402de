# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Cramming: a BERT trained against the clock
#
# Geiping & Goldstein (2022, [arXiv:2212.14034](https://arxiv.org/abs/2212.14034)) fix the
# compute budget (one GPU, one day) and ask which parts of BERT's recipe still make sense.
# Their answer, the *crammed* recipe, changes the architecture (pre-LN, no biases, gated FFN,
# sparse prediction) and the training (one-cycle learning rate at 10⁻³, batch-size ramp, 25%
# masking, no dropout). This page shows our implementation's moving parts and runs both recipes
# for a few CPU-seconds each on the Brown corpus. The claims are checked by
# `repro run cramming`; the numbers at the end come from its committed results.

# %%
# ruff: noqa: E402  (a notebook imports where each cell needs it)
import dataclasses
import json
import os

import torch

from repro.papers.cramming.recipes import CRAMMED, ORIGINAL, batch_size_at, lr_factor, parse_budget

torch.set_num_threads(1)
rows = [
    (f.name, getattr(CRAMMED, f.name), getattr(ORIGINAL, f.name))
    for f in dataclasses.fields(CRAMMED)
]
print(f"{'setting':18} {'crammed':>20} {'original':>20}")
for name, c, o in rows[1:]:
    print(f"{name:18} {c!s:>20} {o!s:>20}")

# %% [markdown]
# ## The budget is the clock every schedule reads
#
# A budget is written like `90s`, `2m` or `24h`. At each optimiser step the trainer computes
# t = elapsed / budget; the learning rate and the batch size (the number of accumulated
# micro-batches) are functions of t, so the same recipe spans two minutes or a day.
# The crammed triangle is `min(a + (1 − a)·t/p, (1 − t)/(1 − p))` with a = 0.25, p = 0.75;
# BERT's is a 1% warmup and a linear decay.

# %%
import matplotlib.pyplot as plt

print(parse_budget("90s"), parse_budget("24h"), parse_budget("1h30m"))
ts = [i / 400 for i in range(401)]
fig, ax = plt.subplots(figsize=(6, 3))
for r, color in ((CRAMMED, "tab:blue"), (ORIGINAL, "tab:red")):
    ax.plot(ts, [lr_factor(r, t) for t in ts], color=color, label=f"{r.name}: lr / peak")
    ax.plot(
        ts,
        [batch_size_at(r, t, 64, 8) / 64 for t in ts],
        color=color,
        ls=":",
        label=f"{r.name}: batch / full",
    )
ax.set_xlabel("elapsed fraction of the budget t")
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# ## One model, two recipes
#
# `ModelConfig` carries every switch; a recipe sets them. At the paper's size (16 layers,
# 768 wide, FFN 3072, vocabulary 32768) the gated FFN splits its 3072-wide projection into a
# value and a gate, so the crammed model has fewer weights than BERT of the same nominal sizes.
# Built on the meta device: no memory is allocated.

# %%
from repro.papers.cramming.model import MaskedLM, model_config

with torch.device("meta"):
    for r in (CRAMMED, ORIGINAL):
        m = MaskedLM(model_config("paper", **r.model_overrides()))
        print(
            f"{r.name:9} paper-size parameters: {sum(p.numel() for p in m.parameters()) / 1e6:.1f}M"
        )

# %% [markdown]
# ## Both recipes, the same few seconds
#
# The tiny model (2 layers, 128 wide) on Brown with a 4096-word WordPiece vocabulary, 6
# CPU-seconds each (the reproduction's quick preset gives each run 35). Sparse prediction and
# the leaner blocks let the crammed recipe push more tokens through the same seconds, and its
# learning rate is ten times higher.

# %%
from repro.papers.cramming.data import encode_documents, load_corpus, pack_documents
from repro.papers.cramming.evaluate import evaluate_mlm
from repro.papers.cramming.train import TrainSettings, pretrain

corpus = load_corpus("brown", vocab_size=4096)
train = pack_documents(encode_documents(corpus.tokenizer, corpus.train_docs), 128)
val = pack_documents(encode_documents(corpus.tokenizer, corpus.val_docs), 128)[:64]
print(f"{len(train)} training and {len(val)} held-out sequences of 128 tokens")
for r in (CRAMMED, ORIGINAL):
    cfg = model_config("tiny", vocab_size=corpus.vocab_size, **r.model_overrides())
    res = pretrain(
        cfg,
        r,
        train,
        TrainSettings(budget_s=6, clock="cpu", batch_size=32, micro_batch=8, show_progress=False),
    )
    loss, acc = evaluate_mlm(res.model, val)
    print(
        f"{r.name:9} {res.steps:3d} steps, {res.tokens_per_s:7,.0f} tok/s, "
        f"held-out MLM loss {loss:.2f} (uniform guess: {torch.log(torch.tensor(4096.0)):.2f})"
    )

# %% [markdown]
# ## What the reproduction measured
#
# From `results/cramming/quick.json` (written by `repro run cramming`): held-out loss per recipe
# and seed, the genre fine-tune, and the throughput ratio to Hugging Face's `BertForMaskedLM`.

# %%
from repro.paths import results_dir

path = results_dir() / "cramming" / "quick.json"
if os.path.exists(path):
    res = json.loads(path.read_text())
    for c in res["claims"]:
        print(f"{c['id']:30} measured {c['measured']!s:22.22} rule {c['rule']:6} -> {c['verdict']}")
    print(f"held-out loss of token frequencies alone: {res['metrics']['heldout_unigram_loss']:.3f}")
    for k, v in res["metrics"]["pretraining"].items():
        print(
            f"  {k:16} loss {v['heldout_mlm_loss']:.3f}  {v['tokens_per_s']:8,.0f} tok/s  {v['steps']} steps"
        )
else:
    print("no results yet: run `repro run cramming`")
