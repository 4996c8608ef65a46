"""Seeding, device and thread choice: the only place the random generators are seeded and threads are chosen."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` raises ValueError when no GPU is present."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA GPU is available; use 'auto' or 'cpu'")
    return torch.device(name)


def set_threads(threads: int | None) -> None:
    """Set torch's CPU thread count (None leaves torch's default)."""
    if threads is not None:
        torch.set_num_threads(threads)


def threads_per_process(processes: int, cpus: int | None = None) -> int:
    """torch threads for each of ``processes`` trainings sharing this machine: its CPUs split evenly, at
    least 1 (``cpus`` defaults to :func:`os.cpu_count`). More threads than cores in all makes every run
    slower: on 2 cores, two runs of 2 threads each were 2–9× slower than two of 1 (docs/results.md).

    Raises ValueError if ``processes < 1``.

    Example:
        >>> threads_per_process(2, cpus=2), threads_per_process(3, cpus=8), threads_per_process(4, cpus=2)
        (1, 2, 1)
    """
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    return max(1, (cpus or os.cpu_count() or 1) // processes)
