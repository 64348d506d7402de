"""Masked-LM pretraining under a wall-clock budget, on one process or many (DDP).

The budget is the clock every schedule reads: at each optimiser step, t = elapsed / budget
(or step / max_steps when a fixed step count is asked for, which makes runs exactly
repeatable), and the learning rate and the batch size (through gradient accumulation) are
functions of t (``recipes.lr_factor``, ``recipes.batch_size_at``). Training stops when t reaches 1.

Same code under ``torchrun --nproc_per_node=N``: each optimiser step draws one global batch
(identical on every process, from the seed and the step number), masks it, and each process
takes its contiguous share. The loss is the sum over the process's masked tokens divided by the
global number of masked tokens (times N, because DDP averages gradients), so the gradient equals
the single-process gradient of the same global batch up to summation order.

Checkpoints (atomic: written to a temporary file, then renamed): every ``checkpoint_every_s``
seconds of budget and/or every ``checkpoint_every_steps`` steps, at the end of the budget, and
on Ctrl-C (or the runner's timeout) before the exception goes on. ``resume=True`` loads the
latest and continues the same schedule; since the batch rows and the masks are pure functions of
the seed and the step, a resumed run takes the same steps as an uninterrupted one (a crash loses
at most the interval since the last checkpoint).

Paper regime: the global batch (the paper's full batch is 8192 sequences) is reached by
gradient accumulation over micro-batches, ramped over the budget; ``static_masks`` masks exactly
k tokens per sequence so that sparse prediction has static shapes and ``compile`` (torch.compile)
traces one graph; ``eval_data`` with ``eval_every`` measures held-out MLM loss during the run
(the clock is paused while it does).

Command line (what a user runs; the reproduction in ``run.py`` calls :func:`pretrain` directly)::

    python -m repro.papers.cramming.train --budget=2m --model=tiny
    python -m repro.papers.cramming.train --budget=24h --model=paper --device=cuda --compile
    torchrun --nproc_per_node=2 -m repro.papers.cramming.train --budget=5m --model=small
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist

from .data import mask_tokens, masked_count
from .model import MaskedLM, ModelConfig
from .recipes import (
    Recipe,
    batch_size_at,
    format_seconds,
    lr_factor,
    parse_budget,
)


@dataclass
class TrainSettings:
    budget_s: float = 120.0
    max_steps: int = 0  # > 0: schedules follow step/max_steps; the budget still caps time
    clock: str = "wall"  # "wall": seconds of wall-clock; "cpu": CPU seconds of this process
    batch_size: int = 32  # full global batch in sequences (reached after the recipe's ramp)
    micro_batch: int = 8  # sequences per forward pass on one process
    seed: int = 0
    device: str = "cpu"
    compile: bool = False
    checkpoint_path: Path | None = None
    checkpoint_every_s: float = 0.0  # > 0: also write a checkpoint every this many budget seconds
    checkpoint_every_steps: int = 0  # > 0: also write a checkpoint every this many steps
    resume: bool = False
    static_masks: bool = False  # exactly k masked tokens per sequence (static shapes; compile)
    eval_data: torch.Tensor | None = None  # held-out sequences for mid-run evaluation
    eval_every: float = 0.0  # > 0: evaluate at every this fraction of the budget (0.25: 4 times)
    show_progress: bool = True
    log: Callable[[str], None] = field(default=lambda msg: print(msg, file=sys.stderr, flush=True))
    on_step: Callable[[int], None] | None = None  # called after every step (tests interrupt here)


@dataclass
class TrainResult:
    model: MaskedLM
    steps: int
    sequences: int
    tokens: int
    elapsed_s: float
    history: list[dict]
    stopped: str  # "budget", "steps"
    evals: list[dict] = field(default_factory=list)  # mid-run held-out evaluations

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.elapsed_s if self.elapsed_s > 0 else 0.0


# --------------------------------------------------------------------------- distributed
def world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed(device: str) -> str:
    """Join the process group torchrun describes (gloo on CPU, NCCL on GPU); returns the device
    this process should use. Without torchrun's variables it does nothing."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (
        dist.is_available() and dist.is_initialized()
    ):
        return device
    cuda = device.startswith("cuda")
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return f"cuda:{local}"
    return device


# --------------------------------------------------------------------------- pieces
def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Decay matrices and embeddings; leave biases, norm gains and scalars alone (both recipes)."""
    decay, keep = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else keep).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": keep, "weight_decay": 0.0}]


def make_optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    return torch.optim.AdamW(
        param_groups(model, recipe.weight_decay), lr=recipe.lr, betas=recipe.betas, eps=recipe.eps
    )


def _coprime_multiplier(n: int, g: torch.Generator) -> int:
    while True:
        a = int(torch.randint(1, max(n, 2), (1,), generator=g))
        if math.gcd(a, n) == 1:
            return a


def batch_rows(cursor: int, count: int, n: int, seed: int) -> torch.Tensor:
    """Rows ``cursor .. cursor+count`` of an endless stream of per-epoch permutations of range(n).

    Epoch e's permutation is the affine bijection i ↦ (a_e·i + b_e) mod n with a_e coprime to n,
    drawn from (seed, e): O(count) work per call, whatever n (no permutation of the corpus is
    ever built), and a pure function of its arguments, so every process and every resumed run
    sees the same data. An affine map spreads consecutive draws a_e rows apart across the corpus;
    it is a weaker shuffle than a uniform random permutation, which packed windows of a corpus in
    document order do not need."""
    out, done = [], 0
    while done < count:
        epoch, offset = divmod(cursor + done, n)
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        a = _coprime_multiplier(n, g)
        b = int(torch.randint(0, n, (1,), generator=g))
        take = min(count - done, n - offset)
        i = torch.arange(offset, offset + take, dtype=torch.long)
        out.append((a * i + b) % n)
        done += take
    return torch.cat(out)


def _mask_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 7_919 + step * 104_729 + 17)


class _Progress:
    """A rich bar with loss, tokens/s and time left on a terminal; a log line every ~10 s otherwise."""

    def __init__(self, enabled: bool, desc: str, log):
        self.enabled, self.desc, self.log = enabled, desc, log
        self.bar = None
        self.last = 0.0
        if enabled and sys.stderr.isatty():
            from rich.progress import BarColumn, Progress, TextColumn

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[info]}"),
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task(desc, total=1.0, info="")

    def update(self, t: float, step: int, loss: float, tok_s: float, left_s: float) -> None:
        info = f"step {step}  loss {loss:.3f}  {tok_s:,.0f} tok/s  {format_seconds(left_s)} left"
        if self.bar is not None:
            self.bar.update(self.task, completed=min(t, 1.0), info=info)
        elif self.enabled and time.monotonic() - self.last > 10:
            self.last = time.monotonic()
            self.log(f"  {self.desc}: {t:5.1%}  {info}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


# --------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: Path, model: MaskedLM, opt, state: dict, recipe: Recipe) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "model_config": dataclasses.asdict(model.cfg),
            "recipe": recipe.name,
            "torch_rng": torch.get_rng_state(),
            **state,
        },
        tmp,
    )
    tmp.replace(path)


def load_checkpoint(path: Path, model: MaskedLM, opt, recipe: Recipe) -> dict:
    ck = torch.load(path, map_location="cpu", weights_only=False)
    if ck["model_config"] != dataclasses.asdict(model.cfg) or ck["recipe"] != recipe.name:
        raise ValueError(
            f"{path}: the checkpoint is of another model or recipe ({ck['recipe']}); "
            "start afresh without resume or point checkpoint_dir elsewhere"
        )
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    torch.set_rng_state(ck["torch_rng"])
    return {
        k: ck.get(k, []) if k == "evals" else ck[k]
        for k in ("step", "cursor", "elapsed", "tokens", "history", "evals")
    }


# --------------------------------------------------------------------------- the loop
def pretrain(
    model_cfg: ModelConfig,
    recipe: Recipe,
    data: torch.Tensor,
    s: TrainSettings,
    desc: str = "pretrain",
) -> TrainResult:
    """Train a fresh (or resumed) MaskedLM on ``data`` (N, T) until the budget is spent."""
    device = init_distributed(s.device)
    rank, n_proc = world()
    unit = s.micro_batch * n_proc
    if s.batch_size % unit:
        raise ValueError(
            f"batch_size={s.batch_size} must be a multiple of micro_batch × processes = {unit}"
        )
    torch.manual_seed(s.seed)  # identical initial weights on every process
    model = MaskedLM(model_cfg).to(device)
    opt = make_optimizer(model, recipe)
    state = {"step": 0, "cursor": 0, "elapsed": 0.0, "tokens": 0, "history": [], "evals": []}
    path = s.checkpoint_path
    if s.resume and path is not None and path.exists():
        state = load_checkpoint(path, model, opt, recipe)
        if rank == 0:
            s.log(f"resumed {path} at step {state['step']}, {format_seconds(state['elapsed'])} in")
    net: torch.nn.Module = model
    ddp = None
    if n_proc > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = ddp = DistributedDataParallel(
            model, device_ids=[int(device.split(":")[1])] if ":" in device else None
        )
    static = s.static_masks or s.compile  # compile wants one shape for the sparse gather
    k_masked = masked_count(recipe.mask_rate, data.shape[1]) if static else 0
    if s.compile:
        net = torch.compile(net)
    cuda = device.startswith("cuda")
    autocast = (
        (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else contextlib.nullcontext
    )
    T = data.shape[1]
    stride = 1
    bar = _Progress(s.show_progress and rank == 0, desc, s.log)
    model.train()
    base, tokens0, step0 = state["elapsed"], state["tokens"], state["step"]
    # "cpu" counts only the CPU time this process gets, so that other jobs on a shared machine do
    # not shrink one recipe's budget more than the other's; on an idle machine with one thread
    # the two clocks agree.
    if s.clock not in ("wall", "cpu"):
        raise ValueError(f"clock={s.clock!r}: use 'wall' or 'cpu'")
    now = time.perf_counter if s.clock == "wall" else time.process_time
    t0 = now()
    last_checkpoint = state["elapsed"]
    stopped = "budget"

    def fraction(elapsed: float, step: int) -> float:
        if s.max_steps > 0:
            return step / s.max_steps
        return elapsed / s.budget_s

    try:
        while True:
            elapsed = state["elapsed"]
            t = fraction(elapsed, state["step"])
            if t >= 1.0 or elapsed >= s.budget_s:
                stopped = "steps" if s.max_steps > 0 and t >= 1.0 else "budget"
                break
            G = batch_size_at(recipe, t, s.batch_size, unit)
            lr = recipe.lr * lr_factor(recipe, t)
            for g in opt.param_groups:
                g["lr"] = lr
            rows = batch_rows(state["cursor"], G, len(data), s.seed)
            inputs, labels = mask_tokens(
                data[rows],
                recipe.mask_rate,
                _mask_generator(s.seed, state["step"]),
                vocab_size=model_cfg.vocab_size,
                rule_80_10_10=recipe.mask_80_10_10,
                exact=static,
            )
            n_masked = int((labels != -100).sum())
            share = G // n_proc
            x_mine = inputs[rank * share : (rank + 1) * share].to(device)
            y_mine = labels[rank * share : (rank + 1) * share].to(device)
            n_micro = share // s.micro_batch
            loss_sum = torch.zeros((), device=device)
            for j in range(n_micro):
                sl = slice(j * s.micro_batch, (j + 1) * s.micro_batch)
                # all-reduce the gradients once per optimiser step, on the last micro-batch
                sync = (
                    ddp.no_sync()
                    if ddp is not None and j < n_micro - 1
                    else contextlib.nullcontext()
                )
                with sync:
                    with autocast():
                        part, _, _ = net(x_mine[sl], y_mine[sl], k_masked)
                    (part * n_proc / max(n_masked, 1)).backward()
                loss_sum += part.detach()
            if recipe.clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            clock = torch.tensor([now() - t0], dtype=torch.float64)
            if n_proc > 1:
                dist.all_reduce(loss_sum)
                dist.all_reduce(clock, op=dist.ReduceOp.MAX)  # every process stops on the same step
            state["step"] += 1
            state["cursor"] += G
            state["tokens"] += G * T
            state["elapsed"] = base + float(clock)
            loss = float(loss_sum) / max(n_masked, 1)
            if state["step"] % stride == 0:
                state["history"].append(
                    {
                        "step": state["step"],
                        "elapsed": state["elapsed"],
                        "t": t,
                        "loss": loss,
                        "lr": lr,
                        "batch": G,
                    }
                )
                if len(state["history"]) > 4000:  # keep a long run's log bounded
                    state["history"] = state["history"][::2]
                    stride *= 2
            run_time = state["elapsed"] - base
            tok_s = (state["tokens"] - tokens0) / max(run_time, 1e-9)
            if s.max_steps > 0:
                left = (s.max_steps - state["step"]) * run_time / max(state["step"] - step0, 1)
            else:
                left = s.budget_s - state["elapsed"]
            bar.update(fraction(state["elapsed"], state["step"]), state["step"], loss, tok_s, left)
            t_now = fraction(state["elapsed"], state["step"])
            if s.eval_data is not None and s.eval_every > 0 and rank == 0:
                due = int(t_now / s.eval_every + 1e-9)  # evaluations due so far
                if due > len(state["evals"]) and t_now < 1.0:
                    paused = now()
                    from .evaluate import evaluate_mlm

                    e_loss, e_acc = evaluate_mlm(model, s.eval_data, device=device)
                    model.train()
                    state["evals"].append(
                        {
                            "step": state["step"],
                            "t": t_now,
                            "elapsed": state["elapsed"],
                            "heldout_loss": e_loss,
                            "heldout_accuracy": e_acc,
                        }
                    )
                    t0 += now() - paused  # evaluation is not training: keep it off the budget
            if (
                path is not None
                and rank == 0
                and (
                    (s.checkpoint_every_steps > 0 and state["step"] % s.checkpoint_every_steps == 0)
                    or (
                        s.checkpoint_every_s > 0
                        and state["elapsed"] - last_checkpoint >= s.checkpoint_every_s
                    )
                )
            ):
                paused = now()
                save_checkpoint(path, model, opt, state, recipe)
                last_checkpoint = state["elapsed"]
                t0 += now() - paused  # nor is writing the checkpoint
            if s.on_step is not None:
                s.on_step(state["step"])
    except BaseException as e:
        # Ctrl-C or the runner's stop: keep the work done so far; a crash (Exception) is not saved
        # because its state may be what broke.
        if not isinstance(e, Exception) and path is not None and rank == 0:
            save_checkpoint(path, model, opt, state, recipe)
            s.log(
                f"\ninterrupted at step {state['step']}: checkpoint written to {path}; "
                "run again with resume to continue"
            )
        raise
    finally:
        bar.close()
    if path is not None and rank == 0:
        save_checkpoint(path, model, opt, state, recipe)
    return TrainResult(
        model=model,
        steps=state["step"],
        sequences=state["cursor"],
        tokens=state["tokens"],
        elapsed_s=state["elapsed"],
        history=state["history"],
        stopped=stopped,
        evals=state["evals"],
    )


# --------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    from .model import MODEL_SIZES
    from .recipes import RECIPES

    p = argparse.ArgumentParser(
        prog="python -m repro.papers.cramming.train",
        description="Pretrain a BERT-style masked LM within a time budget (Cramming). "
        "Put `torchrun --nproc_per_node=N` in front for DDP.",
    )
    p.add_argument("--recipe", default="crammed", choices=sorted(RECIPES))
    p.add_argument("--model", default="tiny", choices=list(MODEL_SIZES))
    p.add_argument("--budget", default="2m", help="e.g. 90s, 2m, 1.5h, 24h (default 2m)")
    p.add_argument("--clock", default="wall", choices=("wall", "cpu"))
    p.add_argument(
        "--steps", type=int, default=0, help="fixed optimiser steps instead of the clock"
    )
    p.add_argument(
        "--corpus", default="brown", help="brown, a text file/folder, hf:<dataset>, hf:text:<glob>"
    )
    p.add_argument("--vocab_size", type=int, default=None, help="default: the model size's")
    p.add_argument("--seq_len", type=int, default=128)
    p.add_argument("--batch_size", type=int, default=32, help="full global batch in sequences")
    p.add_argument(
        "--micro_batch", type=int, default=8, help="sequences per forward pass per process"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--attention", default="sdpa", choices=("sdpa", "manual"))
    p.add_argument("--compile", action="store_true")
    p.add_argument("--checkpoint", default=None, help="checkpoint file (default: in the cache)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    p.add_argument("--eval_sequences", type=int, default=256)
    p.add_argument(
        "--evals", type=int, default=4, help="held-out evaluations during the run (0: none)"
    )
    p.add_argument(
        "--out",
        default=None,
        help="JSON file for the run's record: loss curve, mid-run and final held-out loss",
    )
    p.add_argument("--dry_run", action="store_true", help="print the plan and stop")
    p.add_argument("--no_progress", action="store_true")
    return p


def write_run_record(path: Path, args, cfg, res, device, loss, acc, corpus, train, val) -> None:
    """The CLI run as a results file (atomic): settings, throughput, the loss curve, mid-run
    evaluations and the final held-out MLM loss beside the unigram line of the same masking."""
    import json
    import platform

    from repro.common import device_name
    from repro.results import atomic_write_text, jsonable

    from .evaluate import unigram_loss

    unigram = unigram_loss(train, val[: args.eval_sequences], corpus.vocab_size)
    record = {
        "kind": "cramming-cli-run",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "device": device_name(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "args": vars(args),
        "model": dataclasses.asdict(cfg),
        "parameters": sum(p.numel() for p in res.model.parameters()),
        "steps": res.steps,
        "sequences": res.sequences,
        "tokens": res.tokens,
        "elapsed_s": res.elapsed_s,
        "tokens_per_s": res.tokens_per_s,
        "stopped": res.stopped,
        "held_out": {
            "loss": loss,
            "accuracy": acc,
            "unigram_loss": unigram,
            "below_unigram": unigram - loss,
            "sequences": int(min(args.eval_sequences, len(val))),
        },
        "evals": res.evals,
        "curve": res.history,
    }
    atomic_write_text(path, json.dumps(jsonable(record), indent=1) + "\n")
    print(f"run record: {path}")


def main(argv: list[str] | None = None) -> int:
    from repro.common import pick_device, seed_everything
    from repro.paths import cache_dir

    from .data import encode_documents, load_corpus, pack_documents
    from .evaluate import evaluate_mlm
    from .model import MODEL_SIZES, model_config
    from .recipes import get_recipe

    args = build_parser().parse_args(argv)
    try:
        budget_s = parse_budget(args.budget)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    recipe = get_recipe(args.recipe)
    vocab = args.vocab_size or MODEL_SIZES[args.model]["vocab_size"]
    ckpt = (
        Path(args.checkpoint)
        if args.checkpoint
        else (
            cache_dir()
            / "cramming"
            / "checkpoints"
            / f"cli-{args.model}-v{vocab}-{args.recipe}-seed{args.seed}.pt"
        )
    )
    if args.dry_run:
        print(f"recipe {recipe.name}: {recipe}")
        print(f"model {args.model}: {MODEL_SIZES[args.model]}, vocabulary {vocab}")
        print(
            f"budget {format_seconds(budget_s)} ({args.clock} clock); batch {args.batch_size} "
            f"in micro-batches of {args.micro_batch}; checkpoint {ckpt}"
        )
        for t in (0.0, 0.25, 0.5, 0.75, 1.0):
            print(
                f"  t={t:.2f}: lr {recipe.lr * lr_factor(recipe, t):.2e}, batch "
                f"{batch_size_at(recipe, t, args.batch_size, args.micro_batch)}"
            )
        return 0
    seed_everything(args.seed)
    device = pick_device(args.device)
    corpus = load_corpus(args.corpus, vocab_size=vocab)
    train = pack_documents(encode_documents(corpus.tokenizer, corpus.train_docs), args.seq_len)
    val = pack_documents(encode_documents(corpus.tokenizer, corpus.val_docs), args.seq_len)
    cfg = model_config(
        args.model,
        vocab_size=corpus.vocab_size,
        max_seq=args.seq_len,
        attention=args.attention,
        **recipe.model_overrides(),
    )
    settings = TrainSettings(
        budget_s=budget_s,
        max_steps=args.steps,
        clock=args.clock,
        batch_size=args.batch_size,
        micro_batch=args.micro_batch,
        seed=args.seed,
        device=device,
        compile=args.compile,
        checkpoint_path=ckpt,
        resume=args.resume,
        eval_data=val[: min(args.eval_sequences, 64)] if args.evals > 0 else None,
        eval_every=1.0 / (args.evals + 1) if args.evals > 0 else 0.0,
        show_progress=not args.no_progress,
    )
    if args.out and Path(args.out).is_dir():
        print(f"error: --out {args.out} is a folder; give a file name (run.json)", file=sys.stderr)
        return 2
    try:
        res = pretrain(cfg, recipe, train, settings, desc=f"{recipe.name} {args.model}")
    except KeyboardInterrupt:
        return 130
    rank, _ = world()
    if rank == 0:
        loss, acc = evaluate_mlm(
            res.model,
            val[: args.eval_sequences],
            device=str(next(res.model.parameters()).device),
        )
        print(
            f"{recipe.name}: {res.steps} steps, {res.tokens:,} tokens in {format_seconds(res.elapsed_s)} "
            f"({res.tokens_per_s:,.0f} tok/s); held-out MLM loss {loss:.4f}, accuracy {acc:.4f}; "
            f"checkpoint {ckpt}"
        )
        if args.out:
            write_run_record(Path(args.out), args, cfg, res, device, loss, acc, corpus, train, val)
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
