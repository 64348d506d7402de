"""Cramming: Training a Language Model on a Single GPU in One Day (Geiping & Goldstein 2022,
arXiv:2212.14034).

A BERT-style masked LM pretrained under a fixed wall-clock budget, with the paper's "crammed"
recipe against the original BERT recipe run through the same code (``recipes.py`` lists every
setting of both, ``model.py`` the architecture switches). The budget is a first-class setting
(``--budget=40s``, ``--budget=24h``): the learning-rate schedule and the batch-size ramp read the
elapsed fraction of it.

Claims:
  * finding, equal budget, better loss: the crammed recipe's held-out MLM loss is below the
    original recipe's (per-seed paired difference, 95% interval above 0);
  * finding, pretraining helps downstream: the fine-tuned crammed model beats the same
    architecture fine-tuned from random initialisation (genre of held-out Brown passages, three
    groups; per-seed paired difference of balanced accuracy);
  * finding, the crammed recipe's encoder fine-tunes better than the original recipe's (same
    task, same fine-tuning settings and steps; the paper's GLUE rows at equal budget);
  * check, throughput: training tokens/s of our crammed encoder against Hugging Face's
    ``BertForMaskedLM`` at equal FFN FLOPs (intermediate size 3/4 of our gated width), measured
    side by side in the run (a property of our code; the paper gives no such ratio); the ratio
    at the same nominal width is reported beside it;
  * finding, paper scale (GPU only): the comparison of the first claim at the paper's model size.

Seeds: 3 (quick) / 5 (full), ``ctx.seed + i``; both recipes of one seed share batch order and
masks. Gates: the crammed model's held-out MLM loss is at least 0.5 nats (full: 1.0) below the
loss of predicting the training corpus's token frequencies on the same masked positions
(``crammed_below_unigram``, per seed); every finding is gated on it. The original recipe's margin
(``original_below_unigram``) is reported, not gated: the paper's claim is that it gets little
done in the same budget.

GLUE: ``glue.py`` loads any GLUE task through ``datasets`` (GLUE's TSV distribution, the Hub's
parquet/json layout, or the Hub itself), encodes sentence pairs with padding masks, and scores
with scikit-learn/scipy; ``evaluate.GLUE_SETTINGS`` are the authors' released fine-tuning
settings. Without the Hub (this machine), the run's downstream task stays the Brown genre task.
Data at scale: ``shards.py`` (streaming tokenisation into memory-mapped uint16/uint32 shards,
compression-ratio filter, dedup, O(1) window sampling; ``shards=True`` trains from them) and its
benchmark ``python -m repro.papers.cramming.databench``.

Quick preset: a 64-wide model on 8-token windows of Brown with a 512-entry vocabulary, both
recipes' learning rates ×10 and init std 0.1 (``lr_scale``, ``init_std``): the settings at which
the crammed model leaves the unigram plateau within 30 CPU-seconds (the card says how they were
found); the full preset keeps the paper's 128 tokens, learning rates and init.

Left out, and why: 24 hours of training; GLUE in the run (the Hub is unreachable here). Our
held-out loss is not comparable with the paper's ≈1.9: another corpus, vocabulary and budget. At paper size the Brown corpus (1.4M tokens) is repeated many
times within an hour of GPU, a regime the crammed recipe (no dropout) was not designed for;
pass ``--corpus`` a larger text collection there.

Run the training alone (the run a user does): ``python -m repro.papers.cramming.train --help``;
with ``torchrun --nproc_per_node=N`` in front it trains with DDP.
"""

from dataclasses import dataclass
from typing import Literal

from repro.claims import AtLeast, Claim, Reproduction, learned_gate


@dataclass(frozen=True)
class Config:
    # The quick preset's settings (the defaults) were chosen by trials until the crammed model
    # left the unigram plateau within the budget on every seed (see the card): 64 wide, a
    # 512-entry vocabulary, 8-token windows, the recipes' learning rates ×10 and init std 0.1.
    model: Literal["micro", "mini", "tiny", "small", "paper"] = "mini"  # model.MODEL_SIZES
    budget: str = "30s"  # wall-clock (or CPU) budget of EACH pretraining run: 90s, 2m, 24h
    clock: Literal["wall", "cpu"] = "cpu"  # cpu: this process's CPU seconds, immune to other jobs
    # torch threads while pretraining under the CPU clock on a CPU (0: torch's own setting). The
    # clock sums all threads' time; at the quick size a second thread bought ~30k instead of
    # ~49k tokens per CPU-second, so the budget's step count would depend on OMP_NUM_THREADS
    cpu_clock_threads: int = 1
    seeds: int = 3  # one pretraining run per recipe and seed (seeds ctx.seed + i)
    corpus: str = "brown"  # brown, a text file/folder, or hf:<dataset> / hf:text:<glob>
    vocab_size: int = 512  # WordPiece vocabulary (the paper: 32768)
    seq_len: int = 8  # tokens per packed sequence ([CLS] + 7; the paper: 128)
    batch_size: int = 128  # full batch in sequences (crammed ramps up to it; original fixed)
    micro_batch: int = 128  # sequences per forward pass; the rest is gradient accumulation
    lr_scale: float = 10.0  # × both recipes' peak learning rates (1.0: the paper's, at 768 wide)
    init_std: float = 0.1  # weight init std (the paper and BERT: 0.02, at 768 wide)
    max_steps: int = 0  # > 0: fixed step count instead of the budget's clock (repeatable)
    eval_sequences: int = 2048  # held-out sequences for MLM loss/accuracy
    finetune_per_class: int = 48  # labelled training passages per genre group
    finetune_test_per_class: int = 150  # held-out test passages per genre group
    finetune_epochs: int = 5  # the paper's downstream recipe: 5 epochs
    finetune_lr: float = 1e-3  # scaled down; the smallest lr of {1e-4, 1e-3} at which the
    # random-init baseline trains at all in this many steps
    finetune_batch: int = 16  # the paper's downstream batch size
    throughput_steps: int = 3  # training steps per timed round in the HF comparison
    throughput_rounds: int = 3  # interleaved rounds; the median is reported
    finetune_pooler: Literal["cls", "mean"] = "mean"  # the authors': cls (see evaluate.py)
    attention: Literal["sdpa", "manual"] = "sdpa"  # sdpa picks a fused kernel on a GPU
    compile: bool = False  # torch.compile the model (implies static_masks)
    static_masks: bool = False  # exactly k masked tokens per sequence: static shapes
    midrun_evals: int = 3  # held-out evaluations during each pretraining run (clock paused)
    midrun_eval_sequences: int = 64  # held-out sequences each mid-run evaluation uses
    shards: bool = False  # train from memory-mapped token shards (the large-corpus path)
    checkpoint: bool = True  # write a checkpoint at the end of each run and on Ctrl-C
    checkpoint_every: str = ""  # also every this much budget, e.g. "10m" ("": only at the end)
    checkpoint_dir: str = ""  # default: <cache>/cramming/checkpoints (never results/)
    resume: bool = False  # continue runs from their checkpoints


REPRO = Reproduction(
    id="cramming",
    papers=("cramming",),
    title="BERT crammed into a budget: crammed vs original recipe",
    config=Config,
    presets={
        # CI: a 64-wide model, 30 CPU-seconds per pretraining run, 3 seeds × 2 recipes (≈ 200
        # CPU-seconds in all).
        "quick": {},
        # One GPU, about two hours: the paper's model size and vocabulary, 12 minutes per run,
        # 5 seeds × 2 recipes.
        "full": {
            "seeds": 5,
            "model": "paper",
            "seq_len": 128,
            "lr_scale": 1.0,
            "init_std": 0.02,
            "eval_sequences": 1024,
            "budget": "12m",
            "clock": "wall",
            "vocab_size": 32768,
            # the paper ramps to 8192 sequences over 24 hours; gradient accumulation reaches it
            # (batch_size=8192), but in a 12-minute run of this size that leaves on the order of
            # a hundred optimizer steps, so the preset stays at BERT's 256
            "batch_size": 256,
            "micro_batch": 64,
            "finetune_per_class": 256,
            "finetune_lr": 4e-5,
            "throughput_steps": 10,
        },
    },
    claims=(
        Claim(
            id="crammed-beats-original",
            statement="At the same wall-clock budget the crammed recipe reaches a lower held-out "
            "MLM loss than the original BERT recipe",
            source="§4–5; GLUE table, 24 h budget rows",
            paper_value="crammed recipe: MLM loss ≈1.9 after 24 h on one A6000; the original "
            "recipe in the same budget falls far behind",
            metric="mlm_loss_gap",
            # Per-seed original − crammed loss; reproduced when the 95% interval lies above 0.
            # This replaces the former "gap larger than the seed spread" (gap / range ≥ 1 over two
            # seeds) with the interval that makes the same point: the gap is not seed noise.
            rule=AtLeast(0.0),
            kind="finding",
            # a loss gap between models that are not below the unigram line compares two
            # stages of learning token frequencies, not the recipes' language models. Only the
            # crammed model must have learned: the paper's point is that the original recipe
            # gets little done in the same budget, so requiring it to learn too would make the
            # finding unjudgeable exactly when the paper's effect is strongest (its margin is
            # reported beside, as original_below_unigram)
            gates=(learned_gate("crammed"),),
            unit="nats (original − crammed, held-out MLM loss)",
            # a time budget: the steps taken, hence the losses, depend on the machine's speed
            verify_rtol=None,
        ),
        Claim(
            id="pretraining-helps-downstream",
            statement="Fine-tuned from the crammed checkpoint, the classifier beats the same model "
            "fine-tuned from random initialisation",
            source="§5, GLUE dev-set table",
            paper_value="GLUE average 78.6 (crammed BERT) vs 45.5 (no pretraining)",
            metric="downstream_accuracy_gap",
            # Per-seed pretrained − random-init balanced accuracy; the interval must lie above 0
            # (as above, in place of "gap larger than the seed spread"): the paper's gap is 33
            # points, so any real effect of pretraining should clear its own seed noise.
            rule=AtLeast(0.0),
            kind="finding",
            # "pretraining helps" says nothing unless the pretraining learned something
            gates=(learned_gate("crammed"),),
            unit="balanced accuracy (pretrained − random init)",
            verify_rtol=None,  # fine-tunes checkpoints trained for a time budget (above)
        ),
        Claim(
            id="crammed-finetunes-better",
            statement="Fine-tuned with the same settings and steps, the crammed recipe's encoder "
            "beats the original recipe's encoder pretrained for the same budget",
            source="§5, GLUE dev-set table (original BERT recipe at the crammed budget)",
            paper_value="the original recipe in 24 h falls far behind crammed BERT on GLUE",
            metric="downstream_crammed_vs_original",
            # Per-seed crammed − original balanced accuracy; the interval must lie above 0: the
            # paper reports the original recipe far behind at equal budget, no threshold beyond
            rule=AtLeast(0.0),
            kind="finding",
            # the crammed encoder must have learned from context, or the comparison is between
            # initialisations that only know token frequencies (the original's margin is
            # reported, not gated, as for crammed-beats-original)
            gates=(learned_gate("crammed"),),
            unit="balanced accuracy (crammed − original)",
            verify_rtol=None,  # as above
        ),
        Claim(
            id="throughput-vs-hf-bert",
            statement="Our crammed encoder trains at least 1.3× as many tokens/s as Hugging Face "
            "BertForMaskedLM of the same sizes at equal FFN FLOPs, timed side by side in one run",
            source="§4.2 (architecture changes chosen for speed per budget)",
            paper_value="no single ratio in the paper; target ≥ 1.3× on a CPU (issue)",
            metric="throughput_ratio_vs_hf",
            # The target the project set for CPU; the paper motivates each change by throughput.
            rule=AtLeast(1.3),
            # a property of our implementation (its speed against a peer library), not a result
            # of the paper
            kind="check",
            unit="× HF BERT tokens/s",
            verify_rtol=None,  # a timing: depends on the machine and its load
        ),
        Claim(
            id="paper-scale-gpu",
            statement="At the paper's model size on one GPU (full preset), the crammed recipe again "
            "reaches a lower held-out MLM loss than the original at equal budget",
            source="§4–5",
            paper_value="MLM loss ≈1.9 after 24 h on an A6000 (context only: other data, budget)",
            metric="paper_scale_mlm_loss_gap",
            rule=AtLeast(0.0),  # as for crammed-beats-original
            kind="finding",
            gates=(learned_gate("crammed"),),  # as for crammed-beats-original
            unit="nats (original − crammed, held-out MLM loss)",
            gpu_only=True,
            # a wall-clock budget: the step count, hence the loss, depends on the GPU
            verify_rtol=None,
        ),
    ),
    bench="bench:main",
    timeout_s=600,  # a hang guard: ~200 CPU-s; 335 s wall seen on a loaded machine (35 s budget)
)
