"""What colorize.tuning buys: epoch time of the same loop in fresh processes, tuning off vs on."""

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
    from colorize import tuning
    tuning.apply()
    import torch
    from colorize.data.faces import load_faces
    from colorize.models import ConvNet
    from colorize.runtime import seed_everything
    from colorize.trainer import DeviceImages, train_epoch
    gen = seed_everything(0)
    train = DeviceImages.from_set(load_faces({root!r}).train, torch.device("cpu"))
    model = ConvNet(layers=2, kernel_size=5, channels=16, tanh=True).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    times = []
    for epoch in range(1, 4):
        t = time.perf_counter(); train_epoch(model, opt, train, 16, gen, epoch, progress=False)
        times.append(time.perf_counter() - t)
    print(json.dumps(times))
""")


def tuning(repeats: int) -> list[Row]:
    samples: dict[str, list[float]] = {"0": [], "1": []}
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY" and not k.startswith("MALLOC_")}
    for _ in range(repeats):
        for flag in ("0", "1"):
            out = subprocess.run([sys.executable, "-c", SCRIPT.format(root=str(faces_root()))], cwd=ROOT,
                                 env={**env, "COLORIZE_TUNING": flag}, capture_output=True, text=True, check=True)
            samples[flag] += json.loads(out.stdout.strip().splitlines()[-1])[1:]  # first epoch warms up
    off, on = statistics.median(samples["0"]), statistics.median(samples["1"])
    return [
        Row("tuning", "2-conv k5 c16: COLORIZE_TUNING=0", off, "s/epoch", samples["0"]),
        Row("tuning", "2-conv k5 c16: tuning on (default)", on, "s/epoch", samples["1"],
            "OMP_WAIT_POLICY=ACTIVE + malloc thresholds"),
        Row("tuning", "speed-up from tuning", off / on, "x"),
    ]
