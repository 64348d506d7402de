"""Every mistake a newcomer makes gets one line on stderr, naming the argument and what would
be right, exit code 2, and no traceback."""

from __future__ import annotations

import pytest

from repro import cli

MISTAKES = [
    (["run", "rmsnorm", "--device", "gpu", "--dry-run"], "--device gpu: unknown device"),
    (["all", "--device", "gpu"], "--device gpu: unknown device"),
    (["bench", "flash-attention", "--device", "tpu"], "--device tpu: unknown device"),
    (["lsit"], "did you mean `repro list`?"),
    (["shwo", "rwkv"], "did you mean `repro show`?"),
    (
        ["run", "lora", "--presets=full"],
        "--presets: no such option or config field; did you mean --preset?",
    ),
    (["run", "lora", "--devise", "cpu"], "did you mean --device?"),
    (["all", "--preset", "fast"], "--preset fast: not declared by"),
    (["run", "lora", "--preset", "huge"], "unknown preset 'huge'; choose one of full, quick"),
    (["run", "lora", "--finetune_steps=-5"], "--finetune_steps=-5: must be at least 1"),
    (["run", "lora", "--seeds=0"], "--seeds=0: must be at least 1"),
    (["run", "lora", "--pretrain_lr=0"], "a learning rate must be positive"),
    (["run", "lora", "--stepz=3"], "unknown key --stepz"),
    (["run", "lora", "--ranks=(1,x)"], "expected an integer"),
    (["run", "lora", "--seed=abc"], "argument --seed: invalid int value: 'abc'"),
    (["run", "lora", "--finetune_steps=many"], "expected an integer"),
    (["show"], "the following arguments are required: paper"),
    (["run"], "the following arguments are required: paper"),
    (["show", "bertt"], "no card or reproduction called 'bertt'"),
    (["bench", "nope"], "no reproduction called 'nope'"),
    (["bench", "rwkv"], "rwkv has no benchmark"),
    (["check", "extra"], "unexpected argument(s): extra"),
    (["list", "--jsn"], "unexpected argument(s): --jsn"),
    (["rejudge", "nope"], "no reproduction called 'nope'"),
    (["verify", "nope"], "no reproduction called 'nope'"),
    (["run", "lora", "stray"], "unexpected argument(s) stray"),
    (["all", "--shard", "4/3", "--dry-run"], "--shard 4/3: expected I/N with 1 ≤ I ≤ N"),
    (["all", "--shard", "half", "--dry-run"], "--shard 'half': expected I/N"),
    (["all", "--executor", "k8s"], "argument --executor: invalid choice: 'k8s'"),
    (["all", "--partition", "gpu", "--dry-run"], "cluster options (--partition"),
    (["all", "--executor", "slurm", "--cpus", "0", "--only", "gpt"], "cpus: 0 is not a positive"),
    (
        ["all", "--executor", "slurm", "--cluster-config", "nope.toml", "--only", "gpt"],
        "--cluster-config nope.toml: no such file",
    ),
    (["submit", "--executor", "submitit-local"], "give the command after --"),
    (["results", "merge", "no/such/dir"], "no/such/dir: not a folder"),
    (["results"], "the following arguments are required: merge"),
]


def call(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as e:  # argparse's own errors
        return int(e.code or 0)


@pytest.mark.parametrize(("argv", "expected"), MISTAKES, ids=[" ".join(a) for a, _ in MISTAKES])
def test_a_mistake_is_one_line_and_exit_code_2(argv, expected, capsys):
    code = call(argv)
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert "Traceback" not in err + out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert expected in lines[0], lines[0]


def test_cuda_without_a_gpu_is_a_one_line_error(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert call(["run", "rmsnorm", "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "repro: error: --device cuda: no CUDA device is available here; use --device cpu"


@pytest.mark.parametrize("argv", [["--version"], ["graph", "--help"], ["new", "--help"]])
def test_help_and_version_work(argv, capsys):
    assert call(argv) == 0
    out = capsys.readouterr().out
    assert out.strip()
    if argv == ["--version"]:
        assert out.startswith("repro ")


def test_every_subcommand_has_help(capsys):
    for name in cli.COMMANDS:
        assert call([name, "--help"]) == 0, name
        assert "usage" in capsys.readouterr().out.lower(), name


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "deepnet", "--probe_batch=2", "--dry-run"],  # "probe" is not a probability
        ["run", "mup", "--log2_lrs=(-6, -5, -4)", "--dry-run"],  # log learning rates
        ["run", "on-layer-normalization", "--warmup_steps=0", "--dry-run"],  # no warm-up
    ],
)
def test_valid_values_are_accepted(argv, capsys):
    assert call(argv) == 0, capsys.readouterr().err
