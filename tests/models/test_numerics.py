"""Same seed, same numbers: training steps in separate processes give bit-identical weights under the pinned
kernels and thread count, and the pin is what the processes run with."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STEPS = """
import hashlib, sys
import models  # pins the kernels before torch loads
import torch
from models.adapters import trainable_parameters
from models.config import tiny
from models.earthgpt import EarthGPT
from models.numerics import set_cpu_threads

set_cpu_threads(2)
torch.manual_seed(0)
model = EarthGPT(tiny())
model.set_stage("stage2")
model.train()
optimiser = torch.optim.AdamW(trainable_parameters(model), lr=1e-3)
data = torch.Generator().manual_seed(1)
pixels, ids = torch.rand(8, 3, 64, 64, generator=data), torch.randint(4, 512, (8, 96), generator=data)
for _ in range(3):
    loss = model(pixels, ids, torch.ones_like(ids), labels=ids).loss
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
weights = b"".join(p.detach().numpy().tobytes() for p in model.parameters())
print(torch.backends.cpu.get_cpu_capability(), hashlib.sha256(weights).hexdigest())
"""


def _run(env_changes):
    env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "DNNL_MAX_CPU_ISA")}
    proc = subprocess.run([sys.executable, "-c", STEPS], cwd=REPO, env={**env, "PYTHONPATH": str(REPO),
                                                                         **env_changes},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.split()


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the kernel pin is for x86-64")
def test_the_same_seed_gives_the_same_weights_in_every_process_with_avx2_kernels():
    first, second = _run({}), _run({"OMP_NUM_THREADS": "1"})  # another default thread count: pinned to 2
    assert first[0] == "AVX2" and first == second
