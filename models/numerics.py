"""The same numbers on every machine of a kind: CPU kernels and thread counts chosen, not detected.

A CPU run's floating-point results depend on the instruction set of the kernels (PyTorch dispatches AVX-512
where the CPU has it, AVX2 elsewhere; MKL and oneDNN do the same) and on the number of threads (the order of
reductions). Measured here: five training steps of the tiny model give four different weight hashes for
AVX-512 / AVX2 kernels on 1 / 2 threads. `pin_instruction_set` asks every library for AVX2 kernels, which any
x86-64 machine of this kind has; the thread count is a setting (compute.cpu_threads), applied per run.
The environment variables only work before the libraries load, so this runs when `models` is imported (the
Makefile exports the same values, for processes that import torch first).
"""

from __future__ import annotations

import os
import platform

KERNELS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2"}


def pin_instruction_set() -> None:
    """AVX2 kernels for PyTorch, MKL and oneDNN on x86-64 (a value already set in the environment wins)."""
    if platform.machine().lower() in ("x86_64", "amd64"):
        for name, value in KERNELS.items():
            os.environ.setdefault(name, value)


def set_cpu_threads(threads: int | None) -> None:
    """Fix the number of CPU threads torch computes with (None: leave torch's choice)."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
