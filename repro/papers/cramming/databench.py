"""Data-path benchmark: prepare and sample a large repeated-Brown corpus with bounded memory.

``python -m repro.papers.cramming.databench [--tokens 100M] [--also 10M] [--dir PATH]``

For each size it starts a fresh process that (1) trains a WordPiece tokenizer on a sample of
the stream, (2) streams the Brown corpus, repeated as often as needed, through
``shards.prepare_shards`` (compression filter on; dedup off, since every repeat of the corpus
would be dropped as a duplicate), (3) draws ``--batches`` batches of ``--batch``×``--seq_len``
windows through ``train.batch_rows`` and ``ShardedTokens``, and reports tokens/s of both phases
and the process's peak resident memory (``getrusage``: ``ru_maxrss``) after preparing and
after sampling. Peak memory that stays flat from the smaller to the larger size is what
"bounded" means here; the table prints both. Sampling reads the shards through memory maps, so
the pages it touches count in RSS while the kernel keeps them cached (file-backed and
reclaimable; at most the shards' size): the after-sampling peak grows with the corpus for that
reason alone, and ``anon_rss_mib_after_sampling`` (the heap) shows it.
The shards are written under ``--dir`` (default: a temporary folder, removed afterwards).
Single-threaded (``OMP_NUM_THREADS``/``RAYON_NUM_THREADS`` = 1) unless the environment says
otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def parse_count(text: str) -> int:
    t = str(text).strip().upper().replace("_", "")
    mult = {"K": 10**3, "M": 10**6, "B": 10**9}.get(t[-1:], 1)
    try:
        value = float(t[:-1] if t[-1:] in "KMB" else t) * mult
    except ValueError:
        raise ValueError(f"token count {text!r}: write e.g. 100M, 5M, 250K or 1000000") from None
    if value < 1:
        raise ValueError(f"token count {text!r}: must be at least 1")
    return int(value)


def repeated_brown(limit_passes: int = 1_000_000):
    """Brown documents, over and over (the stream a large corpus would give)."""
    from repro.common.data import load_brown

    docs = [d.text for d in load_brown()]
    for _ in range(limit_passes):
        yield from docs


def anon_rss_mib() -> float | None:
    """Current anonymous resident memory (heap, not file pages of the memory maps), Linux only."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def measure(
    tokens: int,
    folder: Path,
    *,
    vocab_size: int = 8192,
    seq_len: int = 128,
    batch: int = 256,
    batches: int = 2000,
    shard_tokens: int = 1 << 24,
) -> dict:
    """Prepare ``tokens`` tokens of repeated Brown into ``folder`` and sample from them."""
    import torch

    from .shards import FilterSettings, ShardedTokens, prepare_shards, train_tokenizer_on_sample
    from .train import batch_rows

    rss0 = peak_rss_mib()
    t0 = time.perf_counter()
    tok = train_tokenizer_on_sample(repeated_brown(1), vocab_size=vocab_size, sample_docs=200)
    t_tok = time.perf_counter() - t0
    t0 = time.perf_counter()
    man = prepare_shards(
        repeated_brown(),
        tok,
        folder,
        source="repeated-brown",
        filters=FilterSettings(max_tokens_per_char=0.5, dedup=False),
        shard_tokens=shard_tokens,
        max_tokens=tokens,
    )
    t_prep = time.perf_counter() - t0
    rss_prep = peak_rss_mib()
    data = ShardedTokens(folder, seq_len)
    t0 = time.perf_counter()
    checksum = 0
    for step in range(batches):
        x = data[batch_rows(step * batch, batch, len(data), seed=0)]
        checksum += int(x[:, 1].sum())  # touch the rows so the reads are not optimised away
    t_sample = time.perf_counter() - t0
    return {
        "tokens": man["tokens"],
        "shards": len(man["shards"]),
        "dtype": man["dtype"],
        "documents": man["documents"],
        "dropped_compression": man["dropped_compression"],
        "windows": len(data),
        "tokenizer_s": t_tok,
        "prepare_s": t_prep,
        "prepare_tokens_per_s": man["tokens"] / t_prep,
        "sample_s": t_sample,
        "sample_tokens_per_s": batches * batch * seq_len / t_sample,
        "sample_batches": batches,
        "batch": [batch, seq_len],
        "peak_rss_mib_before": rss0,
        "peak_rss_mib_after_prepare": rss_prep,
        "peak_rss_mib": peak_rss_mib(),
        # sampling reads the shards through memory maps: their pages count in RSS while they
        # stay cached (file-backed, reclaimable, at most the shards' size); the heap is this
        "anon_rss_mib_after_sampling": anon_rss_mib(),
        "disk_mib": sum((folder / s["file"]).stat().st_size for s in man["shards"]) / 2**20,
        "checksum": checksum,
        "torch_threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m repro.papers.cramming.databench")
    p.add_argument("--tokens", default="100M", help="corpus size in tokens (default 100M)")
    p.add_argument(
        "--also", default="10M", help="a smaller size to compare peak memory with ('' for none)"
    )
    p.add_argument("--dir", default="", help="where shards go (default: a temporary folder)")
    p.add_argument("--batches", type=int, default=2000)
    p.add_argument("--json", default="", help="also write the figures to this file")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    try:
        sizes = [parse_count(x) for x in (args.also, args.tokens) if x]
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.child:  # one size, in this process: print its figures as JSON
        folder = Path(args.dir)
        print(json.dumps(measure(sizes[-1], folder, batches=args.batches)))
        return 0
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "RAYON_NUM_THREADS": "1", **os.environ}
    env["TOKENIZERS_PARALLELISM"] = env.get("TOKENIZERS_PARALLELISM", "false")
    rows = []
    with tempfile.TemporaryDirectory(prefix="cramming-databench-") as tmp:
        base = Path(args.dir) if args.dir else Path(tmp)
        for n in sizes:
            folder = base / f"repeated-brown-{n}"
            cmd = [
                sys.executable,
                "-m",
                "repro.papers.cramming.databench",
                "--child",
                "--tokens",
                str(n),
                "--also",
                "",
                "--dir",
                str(folder),
                "--batches",
                str(args.batches),
            ]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if out.returncode:
                print(out.stderr[-3000:], file=sys.stderr)
                return out.returncode
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(
                f"{row['tokens'] / 1e6:7.1f}M tokens in {row['shards']} {row['dtype']} shards "
                f"({row['disk_mib']:.0f} MiB): prepare {row['prepare_tokens_per_s'] / 1e6:.2f}M "
                f"tok/s ({row['prepare_s']:.0f} s), sample {row['sample_tokens_per_s'] / 1e6:.1f}M "
                f"tok/s; peak RSS {row['peak_rss_mib_after_prepare']:.0f} MiB after preparing, "
                f"{row['peak_rss_mib']:.0f} MiB after sampling (mapped shard pages included; "
                f"heap {row['anon_rss_mib_after_sampling'] or float('nan'):.0f} MiB), "
                f"{row['peak_rss_mib_before']:.0f} MiB after imports",
                flush=True,
            )
    if args.json:
        from repro.results import atomic_write_text

        atomic_write_text(Path(args.json), json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
