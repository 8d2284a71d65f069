"""Process settings worth setting? The same loop in fresh processes with glibc malloc thresholds
and libgomp's wait policy changed through their environment variables."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import textwrap

from benchmarks.common import ROOT, Row
from colorize.paths import faces_root

SCRIPT = textwrap.dedent("""
    import json, time
    import torch
    from colorize.data.faces import load_faces
    from colorize.config import model_of
    from colorize.training.runtime import seed_everything
    from colorize.training.device_images import DeviceImages
    from colorize.training.epoch import train_epoch
    from colorize.training.options import FitOptions
    gen = seed_everything(0)
    train = DeviceImages.from_set(load_faces({root!r}).train, torch.device("cpu"))
    model = model_of("baseline", layers=2, kernel_size=5, channels=16, tanh=True).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    times = []
    for epoch in range(1, 4):
        t = time.perf_counter(); train_epoch(model, opt, train, gen, epoch, FitOptions(1, 16, progress=False))
        times.append(time.perf_counter() - t)
    print(json.dumps(times))
""")


def tuning(repeats: int) -> list[Row]:
    malloc = {"MALLOC_MMAP_THRESHOLD_": str(512 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}
    cases = {"defaults": {}, "malloc thresholds": malloc, "OMP_WAIT_POLICY=ACTIVE": {"OMP_WAIT_POLICY": "ACTIVE"},
             "both": {**malloc, "OMP_WAIT_POLICY": "ACTIVE"}}
    samples: dict[str, list[float]] = {name: [] for name in cases}
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY" and not k.startswith("MALLOC_")}
    for _ in range(repeats):
        for name, extra in cases.items():
            out = subprocess.run([sys.executable, "-c", SCRIPT.format(root=str(faces_root()))], cwd=ROOT,
                                 env={**env, **extra}, capture_output=True, text=True, check=True)
            samples[name] += json.loads(out.stdout.strip().splitlines()[-1])[1:]  # first epoch warms up
    base = statistics.median(samples["defaults"])
    return [
        Row("tuning", f"2-conv k5 c16: {name}", statistics.median(v), "s/epoch", v,
            f"{base / statistics.median(v):.2f}x vs defaults")
        for name, v in samples.items()
    ]
