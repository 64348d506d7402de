"""Small helpers every reproduction may use: seeding, device choice, progress, data.

Reproductions import from here and never from each other. Everything here imports torch
lazily or is torch-free, so importing ``repro.common`` costs nothing.
"""

from __future__ import annotations

import os
import random
from typing import Any


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch; ask torch for deterministic kernels on the CPU."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def pick_device(requested: str = "auto") -> str:
    """'auto' -> 'cuda' when a GPU is there, else 'cpu'. An unavailable request is an error."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"--device {requested}: no CUDA device is available here; use --device cpu"
        )
    if requested == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError("--device mps: MPS is not available here; use --device cpu")
    return requested


def device_name(device: str) -> str:
    import platform

    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def param_count(module: Any, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
