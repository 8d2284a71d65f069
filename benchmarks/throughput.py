"""Trials per hour of the study's nets, per training mode: what the GPU check measures.

    python -m benchmarks.throughput --device cuda --out /tmp/out     # on a lent GPU (benchmarks/gpu_check.sh)
    python -m benchmarks.throughput --device cpu --limit 200 --epochs 3   # the same script, tried on a CPU

Each mode trains the study's nets (1-conv k3, 2-conv k5 c8, 4-conv k5 c16; SGD, batch 16, early
stopping off) for a fixed number of epochs, validation and MLflow tracking included, as real
`colorize-train` commands, and records: trials per hour (trials of that many epochs, wall time of
the whole command: start-up, data and compile time count against the mode), ms per training step
(the median epoch's time over its steps) and the GPU's mean utilisation (nvidia-smi, sampled every
0.5 s; empty on a CPU). Modes:

- `eager`: the loop as it was, reading the loss back after every step (`trainer.sync_every_step=true`);
- `nosync`: today's loop, which reads the device once per epoch (`trainer.cuda_graphs=off`);
- `graphs`: today's loop with the step replayed as CUDA graphs (`trainer.cuda_graphs=on`, CUDA
  only): on these SGD nets the whole step (training/step_graphs.py);
- `fwdgraphs`: the forward and backward only as a CUDA graph (`trainer.cuda_graphs=forward`: what
  `graphs` was on 2026-12-04, training/graphs.py);
- `seqN`: N trials (N seeds) one after another in one process (Hydra's basic launcher);
- `procsN`, `procsN+graphs`, `procsN+fwdgraphs`: N trials at once on the device (Hydra's joblib
  launcher, N seeds);
- `fusedN`: N trials (N seeds) as one fused model (`hydra/launcher=fused`, colorize/launch/);
- `fusedNxP`: N*P trials in P fused groups of N, the P groups at once (`hydra.launcher.n_jobs=P`);
  `+graphs` on any of these: each group's whole step captured.

torch.compile is not built: it is listed as skipped; so are the CUDA modes on a CPU. Writes
`throughput.csv` (mode, config, trials_per_hour, step_ms, gpu_util, device, torch, date) and one
log per command under --out, and prints the table.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks.common import device_stamp, experiment_runs, write_rows

NETS = {"1-conv k3": ["model.layers=1", "model.kernel_size=3"],
        "2-conv k5 c8": ["model.layers=2", "model.kernel_size=5", "model.channels=8"],
        "4-conv k5 c16": ["model.layers=4", "model.kernel_size=5", "model.channels=16"]}
COLUMNS = ["mode", "config", "trials_per_hour", "step_ms", "gpu_util", "device", "torch", "date"]
NOT_BUILT = ["compile"]


class GpuSampler:
    """Mean GPU utilisation from nvidia-smi while a command runs (None without nvidia-smi)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True) if shutil.which("nvidia-smi") else None

    def _sample(self) -> None:
        while not self.stop.wait(0.5):
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True).stdout.split()
            if out:
                self.samples.append(float(out[0]))

    def __enter__(self) -> "GpuSampler":
        if self.thread:
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread:
            self.thread.join()

    @property
    def mean(self) -> str:
        return f"{statistics.mean(self.samples):.0f}" if self.samples else ""


def launch_args(mode: str) -> tuple[list[str], int]:
    """A mode's launcher overrides, and how many trials its command runs (1: a single run)."""
    name, _, _ = mode.partition("+")
    if name.startswith("procs"):
        n = int(name[len("procs"):])
        return ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={n}", seeds(n)], n
    if name.startswith("seq"):
        n = int(name[len("seq"):])
        return ["hydra/launcher=basic", seeds(n)], n
    if name.startswith("fused"):
        size, _, at_once = name[len("fused"):].partition("x")
        n, p = int(size), int(at_once or 1)
        return ["hydra/launcher=fused", f"hydra.launcher.max_group={n}", f"hydra.launcher.n_jobs={p}",
                seeds(n * p)], n * p
    return [], 1


def seeds(n: int) -> str:
    return "trainer.seed=" + ",".join(map(str, range(n)))


def run_mode(mode: str, net: str, args: argparse.Namespace, out: Path) -> dict:
    """One mode on one net: a real command, timed whole; its row."""
    from mlflow.tracking import MlflowClient

    launcher, jobs = launch_args(mode)
    slug = f"{mode}-{net}".replace(' ', '_').replace('+', '_')
    store = out / f"{slug}.db"
    cmd = [sys.executable, "-m", "colorize.train", *(["-m"] if jobs > 1 else []), "data=faces",
           f"data.limit={args.limit}" if args.limit else "data.limit=null", f"trainer.max_epochs={args.epochs}",
           "trainer.early_stopping.enabled=false", f"trainer.device={args.device}", "optimizer.lr=0.05",
           *NETS[net], f"tracking.uri=sqlite:///{store}", f"hydra.run.dir={out / 'runs' / slug}",
           f"hydra.sweep.dir={out / 'sweeps' / slug}"]
    cmd.append(f"trainer.cuda_graphs={'forward' if 'fwdgraphs' in mode else 'on' if 'graphs' in mode else 'off'}")
    if mode == "eager":
        cmd.append("trainer.sync_every_step=true")
    cmd += launcher
    start = time.perf_counter()
    with GpuSampler() as gpu, open(out / f"{slug}.log", "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wall = time.perf_counter() - start
    if proc.returncode:
        return {"mode": mode, "config": net, "trials_per_hour": "failed", "step_ms": "", "gpu_util": gpu.mean}
    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    runs = [r for r in experiment_runs(client, "colorize")
            if "mlflow.parentRunId" in r.data.tags or jobs == 1]
    epochs = [m.value for r in runs for m in client.get_metric_history(r.info.run_id, "epoch_seconds")]
    steps = math.ceil(min(args.limit or 4500, 4500) / 16)  # the faces' train split: 4,500
    return {"mode": mode, "config": f"{net}, {args.epochs} epochs", "trials_per_hour": f"{3600 * len(runs) / wall:.1f}",
            "step_ms": f"{1000 * statistics.median(epochs) / steps:.3f}", "gpu_util": gpu.mean}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per trial (>= 3: validation, tracking included)")
    parser.add_argument("--limit", type=int, default=0, help="faces per split (0: all)")
    parser.add_argument("--modes", nargs="+", default=["eager", "nosync", "graphs", "seq4", "procs4", "procs4+graphs",
                                                       "fused4", "fused8", "fused4x2"])
    parser.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS), help="nets of the one-trial modes")
    parser.add_argument("--multi-nets", nargs="+", default=["2-conv k5 c8"], choices=list(NETS),
                        help="nets of the modes that run several trials (procs, seq, fused): they cost more")
    parser.add_argument("--out", type=Path, default=Path("outputs/benchmarks/throughput"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = device_stamp(args.device)
    rows, markdown = [], ""
    skipped = [m for m in args.modes if "graphs" in m and args.device != "cuda"]
    try:
        for mode in (m for m in args.modes if m not in skipped):
            for net in (args.nets if launch_args(mode)[1] == 1 else args.multi_nets):
                rows.append({**run_mode(mode, net, args, args.out), **stamp})
                print(" | ".join(str(rows[-1][c]) for c in COLUMNS), flush=True)
                markdown = write_rows(args.out / "throughput.csv", COLUMNS, rows)  # each row kept if the call is cut
    except KeyboardInterrupt:  # gpu_check.sh's budget: the rows so far stand
        print(f"stopped after {len(rows)} rows: the modes after them were not timed")
    cuda_only = f"; {', '.join(skipped)} (CUDA only)" if skipped else ""
    print(f"skipped: {', '.join(NOT_BUILT)} (not built yet){cuda_only}")
    print(markdown)
    return rows


if __name__ == "__main__":
    main()
