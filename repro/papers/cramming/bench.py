"""``repro bench cramming``: training throughput of our encoder against Hugging Face BERT.

Every model runs the same training step (forward, backward, AdamW update) on the same masked
batches of Brown text, side by side in one process, in interleaved rounds; the table reports
the median tokens/s and the ratio to ``transformers``' ``BertForMaskedLM`` of the same size
(hidden, layers, heads, FFN width, vocabulary, sequence length). Rows:

* ours, crammed recipe (pre-LN, no biases, gated FFN, sparse prediction, no dropout)
* ours, original recipe (post-LN, biases, GELU, full prediction, dropout 0.1): a check that our
  plumbing is not what makes the difference (it should be close to Hugging Face's)
* Hugging Face ``BertForMaskedLM``, dropout 0 and dropout 0.1 (its default)
* Hugging Face ``BertForMaskedLM`` at equal FFN FLOPs: our gated FFN with width F multiplies
  by an H×F matrix (value and gate halves) and an F/2×H one, 1.5·H·F multiply-adds per token;
  BERT's GELU FFN with intermediate size I costs 2·H·I, so I = 3F/4 gives the same FFN FLOPs
  (the nominal-width row gives BERT a third more FFN work than our crammed model)

``ratio_vs_hf`` is against the nominal-width row, ``ratio_vs_hf_equal_flops`` against the
equal-FLOPs one (the check in the reproduction uses the latter).

Usage: ``repro bench cramming [--model=small] [--micro_batch=8] [--rounds=5] [--steps=3]``;
on a GPU the steps run in bf16 autocast (default size there: ``paper``). The table is also
written to ``results/cramming/bench/{cpu,gpu}.json``.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

import torch

from .data import mask_tokens
from .model import MaskedLM, ModelConfig, model_config
from .recipes import get_recipe
from .train import make_optimizer


def equal_flops_intermediate(ffn: int) -> int:
    """BERT's intermediate size whose GELU FFN costs what our gated FFN of width ``ffn`` costs."""
    return 3 * ffn // 4


def hf_bert(cfg: ModelConfig, dropout: float = 0.0, intermediate: int | None = None):
    """transformers' BertForMaskedLM with our model's sizes (None when transformers is missing)."""
    try:
        from transformers import BertConfig, BertForMaskedLM
    except ImportError:
        return None
    conf = BertConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.hidden,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        intermediate_size=intermediate or cfg.ffn,
        max_position_embeddings=cfg.max_seq,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    return BertForMaskedLM(conf)


def _step_fn(model, kind: str, device: str) -> Callable[[torch.Tensor, torch.Tensor], None]:
    opt = (
        torch.optim.AdamW(model.parameters(), lr=1e-4)
        if kind == "hf"
        else make_optimizer(model, get_recipe("crammed"))
    )
    cuda = device.startswith("cuda")

    def step(x, y):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            if kind == "hf":
                loss = model(input_ids=x, labels=y).loss
            else:
                loss = model.mean_loss(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(
    cfg_size: dict,
    *,
    data: torch.Tensor,
    micro_batch: int = 8,
    steps: int = 3,
    rounds: int = 3,
    device: str = "cpu",
    include_hf_dropout: bool = False,
    include_original: bool = True,
    include_hf_equal_flops: bool = True,
    seed: int = 0,
) -> dict:
    """Median training tokens/s of each model on identical batches; interleaved rounds so that a
    change in machine load hits every model alike."""
    torch.manual_seed(seed)
    crammed, original = get_recipe("crammed"), get_recipe("original")
    models: dict[str, tuple] = {}
    cfg = model_config("tiny", **cfg_size, **crammed.model_overrides())
    models["ours (crammed)"] = (MaskedLM(cfg).to(device), "ours")
    if include_original:
        ocfg = model_config("tiny", **cfg_size, **original.model_overrides())
        models["ours (original)"] = (MaskedLM(ocfg).to(device), "ours")
    hf = hf_bert(cfg, 0.0)
    if hf is not None:
        models["HF BertForMaskedLM"] = (hf.to(device), "hf")
        if include_hf_equal_flops:
            eq = hf_bert(cfg, 0.0, equal_flops_intermediate(cfg.ffn))
            models["HF BertForMaskedLM, equal FFN FLOPs"] = (eq.to(device), "hf")
        if include_hf_dropout:
            models["HF BertForMaskedLM, dropout 0.1"] = (hf_bert(cfg, 0.1).to(device), "hf")
    T = cfg.max_seq
    gen = torch.Generator().manual_seed(seed)
    rows = torch.randint(0, len(data), (steps * micro_batch,), generator=gen)
    x_all, y_all = mask_tokens(data[rows, :T], crammed.mask_rate, gen, vocab_size=cfg.vocab_size)
    batches = [
        (
            x_all[i * micro_batch : (i + 1) * micro_batch].to(device),
            y_all[i * micro_batch : (i + 1) * micro_batch].to(device),
        )
        for i in range(steps)
    ]
    fns = {name: _step_fn(m, kind, device) for name, (m, kind) in models.items()}
    for m, _ in models.values():
        m.train()
    for fn in fns.values():  # warm-up: allocations, autotuning, lazy init
        fn(*batches[0])
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, fn in fns.items():
            _sync(device)
            t0 = time.perf_counter()
            for x, y in batches:
                fn(x, y)
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    tokens = steps * micro_batch * T
    out = {}
    for name, (m, _) in models.items():
        med = statistics.median(times[name])
        out[name] = {
            "tokens_per_s": tokens / med,
            "params": sum(p.numel() for p in m.parameters()),
            "seconds_per_step": med / steps,
        }
    hf_name, eq_name = "HF BertForMaskedLM", "HF BertForMaskedLM, equal FFN FLOPs"
    if hf_name in out:
        for row in out.values():
            row["ratio_vs_hf"] = row["tokens_per_s"] / out[hf_name]["tokens_per_s"]
            if eq_name in out:
                row["ratio_vs_hf_equal_flops"] = row["tokens_per_s"] / out[eq_name]["tokens_per_s"]
    return out


def main(overrides: dict, device: str = "auto") -> int:
    from repro.common import device_name, pick_device
    from repro.config import ConfigError

    from .data import encode_documents, load_corpus, pack_documents
    from .model import MODEL_SIZES

    known = {"model", "micro_batch", "steps", "rounds", "vocab_size"}
    bad = set(overrides) - known
    if bad:
        raise ConfigError(
            f"unknown option(s) {', '.join(sorted(bad))}; options: {', '.join(sorted(known))}"
        )
    device = pick_device(device)
    size = overrides.get("model", "paper" if device.startswith("cuda") else "small")
    if size not in MODEL_SIZES:
        raise ConfigError(f"--model={size}: choose one of {', '.join(MODEL_SIZES)}")
    dims = dict(MODEL_SIZES[size])
    vocab = int(overrides.get("vocab_size", dims["vocab_size"]))
    corpus = load_corpus("brown", vocab_size=vocab)
    dims["vocab_size"] = corpus.vocab_size
    data = pack_documents(encode_documents(corpus.tokenizer, corpus.train_docs), dims["max_seq"])
    micro = int(overrides.get("micro_batch", 32 if device.startswith("cuda") else 8))
    res = measure(
        dims,
        data=data,
        micro_batch=micro,
        steps=int(overrides.get("steps", 3)),
        rounds=int(overrides.get("rounds", 5)),
        device=device,
        include_hf_dropout=True,
    )
    from rich.console import Console
    from rich.table import Table

    title = (
        f"training tokens/s, model {size} ({dims['layers']}×{dims['hidden']}, FFN {dims['ffn']}, "
        f"vocab {dims['vocab_size']}, seq {dims['max_seq']}), micro-batch {micro}, "
        f"{device_name(device)}, torch {torch.__version__}"
    )
    table = Table(title=title, title_justify="left")
    for col in ("model", "params", "tokens/s", "× HF BERT", "× HF BERT equal FLOPs"):
        table.add_column(col, justify="right" if col != "model" else "left")
    for name, row in res.items():
        table.add_row(
            name,
            f"{row['params'] / 1e6:.1f}M",
            f"{row['tokens_per_s']:,.0f}",
            f"{row.get('ratio_vs_hf', float('nan')):.2f}",
            f"{row.get('ratio_vs_hf_equal_flops', float('nan')):.2f}",
        )
    Console().print(table)
    from repro.paths import results_dir
    from repro.results import atomic_write_text

    path = (
        results_dir()
        / "cramming"
        / "bench"
        / f"{'gpu' if device.startswith('cuda') else 'cpu'}.json"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        path,
        json.dumps(
            {
                "device": device_name(device),
                "model": size,
                "dims": dims,
                "micro_batch": micro,
                "torch": torch.__version__,
                "results": res,
            },
            indent=2,
        )
        + "\n",
    )
    print(f"written: {path}")
    return 0
