"""Eight feed-forward kinds in the same small LM, several seeds. See __init__.py."""

from __future__ import annotations

import math
import statistics

import torch

from repro.common.data import lm_token_streams, random_windows
from repro.common.stats import below_unigram, seeds_for, unigram_entropy
from repro.common.tinylm import LMConfig, TinyLM, cosine_lr, evaluate, train
from repro.context import RunContext
from repro.paths import notes_dir

# Shazeer 2020, Table 1: held-out log-perplexity on C4 after 65,536 and 524,288 steps
TABLE1_65K = {
    "relu": 1.997,
    "gelu": 1.983,
    "swish": 1.994,
    "glu": 1.982,
    "bilinear": 1.960,
    "reglu": 1.953,
    "geglu": 1.942,
    "swiglu": 1.944,
}
TABLE1_524K = {
    "relu": 1.677,
    "gelu": 1.679,
    "swish": 1.683,
    "glu": 1.663,
    "bilinear": 1.648,
    "reglu": 1.645,
    "geglu": 1.633,
    "swiglu": 1.636,
}
GATED = ("glu", "bilinear", "reglu", "geglu", "swiglu")
# our names for the rows of Narang et al.'s table (its 'model_reading' column)
TRANSFER_ROWS = {
    "Vanilla Transformer": "relu",
    "GeLU": "gelu",
    "Swish": "swish",
    "GLU": "glu",
    "LiGLU": "bilinear",
    "ReGLU": "reglu",
    "GeGLU": "geglu",
    "SwiGLU": "swiglu",
}


def transfer_table() -> dict[str, float]:
    """Final C4 loss per feed-forward kind from the lecture's copy of Narang et al.'s Table 1."""
    import yaml

    path = notes_dir() / "data" / "csc6203-l3-tables.yml"
    tables = {t["id"]: t for t in yaml.safe_load(path.read_text(encoding="utf-8"))}
    tab = tables["transformer-modifications"]
    col = tab["columns"]
    name_i, loss_i = col.index("model_reading"), col.index("final_loss")
    out = {
        TRANSFER_ROWS[row[name_i]]: float(row[loss_i])
        for row in tab["rows"]
        if row[name_i] in TRANSFER_ROWS
    }
    missing = set(TRANSFER_ROWS.values()) - set(out)
    if missing:
        raise KeyError(f"{path}: no row for {sorted(missing)} in transformer-modifications")
    return out


def ranks(values: list[float]) -> list[float]:
    """Ranks from 1, ties sharing their average rank (as Spearman's ρ needs)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(a: list[float], b: list[float]) -> float:
    """ρ = Pearson correlation of the ranks."""
    ra, rb = ranks(a), ranks(b)
    ma, mb = statistics.fmean(ra), statistics.fmean(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    return cov / math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))


def fan_in_init(model: TinyLM) -> TinyLM:
    """W ~ N(0, 1/d_in) for every linear layer inside the blocks, the Mesh-TensorFlow default
    that the paper's T5 set-up uses. With it, feed-forward pre-activations are of order 1;
    under the GPT-2 init of ``tinylm`` (std 0.02) they are ~0.1 at our widths, where GELU and
    Swish are almost linear and a gate's product of two small projections is smaller still."""
    with torch.no_grad():
        for block in model.blocks:
            for m in block.modules():
                if isinstance(m, torch.nn.Linear):
                    m.weight.normal_(0.0, m.in_features**-0.5)
    return model


def train_one(cfg, ffn: str, seed: int, train_ids, val_ids) -> tuple[float, int]:
    torch.manual_seed(seed)
    model = TinyLM(
        LMConfig.like(
            cfg,
            ffn=ffn,
            bias=False,
        )
    )
    if cfg.init == "fan_in":
        fan_in_init(model)
    elif cfg.init != "gpt2":
        raise ValueError(f"init {cfg.init!r}: use fan_in or gpt2")
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.0)
    gen = torch.Generator().manual_seed(1000 + seed)  # batch order: same for all kinds per seed
    warm = max(1, cfg.steps // 20)
    losses = train(
        model,
        random_windows(train_ids, cfg.batch_size, cfg.seq_len, gen),
        cfg.steps,
        optimizer=opt,
        lr_at=lambda s: cosine_lr(s, cfg.steps, cfg.lr, warm),
    )
    if not math.isfinite(losses[-1]):
        return math.inf, model.non_embedding_params()
    val = evaluate(model, val_ids, cfg.seq_len, cfg.batch_size, cfg.eval_batches)
    return val, model.non_embedding_params()


def summarise(losses: dict[str, list[float]]) -> dict:
    """The claims' metrics from {ffn: [loss per seed]} (seed i of every kind shares the batch
    order): each is a per-seed list.

    The best plain and the best gated kind are picked by the mean over seeds, then compared
    seed by seed; picking the best per seed would favour the gated side, which has five
    candidates to the plain side's three."""
    mean = {k: statistics.fmean(v) for k, v in losses.items()}
    n = len(next(iter(losses.values())))
    plain = {k: m for k, m in mean.items() if k not in GATED}
    gated = {k: m for k, m in mean.items() if k in GATED}
    best_plain, best_gated = min(plain, key=plain.get), min(gated, key=gated.get)
    kinds = list(mean)
    transfer = transfer_table()

    def rho(table: dict[str, float]) -> list[float]:
        return [
            spearman([losses[k][i] for k in kinds], [table[k] for k in kinds]) for i in range(n)
        ]

    return {
        "mean_loss": mean,
        "seed_spread": statistics.fmean(max(v) - min(v) for v in losses.values()),
        "ranking": sorted(kinds, key=mean.get),
        "best_plain": best_plain,
        "best_gated": best_gated,
        "gated_margin": [losses[best_plain][i] - losses[best_gated][i] for i in range(n)],
        "geglu_swiglu_margin": [
            min(losses["relu"][i] - losses[k][i] for k in ("geglu", "swiglu")) for i in range(n)
        ],
        "spearman_table1": rho(TABLE1_65K),
        "spearman_table1_524k": rho(TABLE1_524K),
        "spearman_transfer_table": rho(transfer),
    }


def plot(losses: dict[str, list[float]], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = sorted(losses, key=lambda k: statistics.fmean(losses[k]))
    transfer = transfer_table()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, k in enumerate(kinds):
        color = "tab:blue" if k in GATED else "tab:gray"
        a.scatter([i] * len(losses[k]), losses[k], color=color, s=14)
        a.plot([i - 0.3, i + 0.3], [statistics.fmean(losses[k])] * 2, color=color, lw=2)
    a.set_xticks(range(len(kinds)), kinds, rotation=30)
    a.set_ylabel("validation loss (nats/token)")
    a.set_title("ours: seeds (dots) and mean (bar); blue = gated")
    for k in kinds:
        m = statistics.fmean(losses[k])
        b.scatter(TABLE1_65K[k], m, color="tab:red", marker="o")
        b.scatter(transfer[k], m, color="tab:green", marker="s")
        b.annotate(k, (TABLE1_65K[k], m), fontsize=7)
        b.annotate(k, (transfer[k], m), fontsize=7)
    b.scatter([], [], color="tab:red", label="Shazeer Table 1 (65k steps)")
    b.scatter([], [], color="tab:green", marker="s", label="Narang et al. final loss")
    b.set_xlabel("published loss")
    b.set_ylabel("our mean loss")
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(cfg, ctx: RunContext) -> None:
    if set(cfg.ffns) != set(TABLE1_65K):
        raise ValueError(f"ffns must be the eight kinds of Table 1: {sorted(TABLE1_65K)}")
    train_ids, val_ids, tok = lm_token_streams(vocab_size=cfg.vocab_size, max_docs=cfg.max_docs)
    # The unigram floor on exactly the held-out targets that ``evaluate`` scores.
    n_eval = cfg.eval_batches * cfg.batch_size * cfg.seq_len
    unigram = unigram_entropy(train_ids, tok.get_vocab_size(), val_ids[1 : n_eval + 1])
    seeds = seeds_for(ctx.seed, cfg.seeds)
    ctx.metrics.update(unigram_entropy=unigram, seeds=seeds)
    losses: dict[str, list[float]] = {k: [] for k in cfg.ffns}
    params: dict[str, int] = {}
    jobs = [(s, k) for s in seeds for k in cfg.ffns]
    for seed, ffn in ctx.progress(jobs, desc="runs"):
        val, params[ffn] = train_one(cfg, ffn, seed, train_ids, val_ids)
        losses[ffn].append(val)
        ctx.metrics["losses"] = losses
        ctx.metrics[f"{ffn}_below_unigram"] = below_unigram(losses[ffn], unigram)
        ctx.log(f"  seed {seed} {ffn}: val {val:.4f}")
    ctx.metrics.update(non_embedding_params=params, **summarise(losses))
    plot(losses, ctx.figure_path("glu_variants.png"))
