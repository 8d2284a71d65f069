"""Where a training process's start-up goes, alone and with many started at once.

    python -m benchmarks.startup_parts --device cuda --procs 1 16     # in gpu_check.sh, on a lent GPU
    python -m benchmarks.startup_parts --device cpu --procs 1 2 --limit 200

On a lent H200 (docs/gpu/README.md, 2026-12-04) a one-trial command spent 22 to 26 s before its first
epoch and a 16-process sweep 55 s, against 8 to 11 s of training for 10 epochs: start-up, not the
device, held the best mode to 7.4x the eager loop. This times its parts in fresh processes, in the
order a trial meets them, `procs` processes started at once: `import torch`, the device's first
work (CUDA's context; nothing on a CPU), the first convolution's forward and backward (cuDNN's
libraries and choice of kernels), `import colorize.job` (Hydra, MLflow, SQLAlchemy), opening the
sweep's MLflow store and making a run there (one sqlite store, made beforehand, that all the
processes share, as a sweep's workers do: MLflow's SQL store is imported here, and until 2026-12-04
the workers queued on the store's lock, docs/gpu/README.md), decoding the faces and copying them
to the device. Writes `startup_parts.csv` (procs, part, median_s, max_s over the processes) under
--out and prints it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.common import device_parser, device_stamp, write_rows

COLUMNS = ["procs", "part", "median_s", "max_s", "device", "torch", "date"]


def child(device: str, limit: int, store: str) -> dict:
    """The parts' seconds in this (fresh) process, in the order a trial meets them."""
    parts, last = {}, time.perf_counter()

    def done(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        parts[name], last = now - last, now

    import torch

    done("import torch")
    dev = torch.device(device)
    torch.ones(1, device=dev).sum().item()
    done("device's first work")
    conv = torch.nn.Conv2d(1, 8, 5, padding=2).to(dev)
    conv(torch.randn(16, 1, 80, 80, device=dev)).square().mean().backward()
    torch.ones(1, device=dev).sum().item()  # waits for the device
    done("first convolution")
    import colorize.job  # noqa: F401  (Hydra, MLflow, SQLAlchemy, the package)

    from colorize.data.faces import load_faces
    from colorize.paths import faces_root
    from colorize.tracking.store import Tracker
    from colorize.training.device_images import DeviceImages

    done("import colorize.job")
    Tracker(store, "startup").create_run("worker").end()
    done("open the sweep's store, one run")
    splits = load_faces(str(faces_root()), limit=limit or None)
    done("decode the faces")
    DeviceImages.from_set(splits.train, dev), DeviceImages.from_set(splits.val, dev)
    torch.ones(1, device=dev).sum().item()
    done("faces to the device")
    return parts


def measure(procs: int, device: str, limit: int) -> list[dict]:
    """`procs` fresh processes started at once, sharing one store; per part, the median and the slowest."""
    from colorize.tracking.store import Tracker

    with tempfile.TemporaryDirectory() as tmp:
        store = f"sqlite:///{tmp}/mlflow.db"
        Tracker(store, "startup")  # made, as a sweep's parent run makes it before its workers start
        cmd = [sys.executable, "-m", "benchmarks.startup_parts", "--child", "--device", device, "--limit", str(limit),
               "--store", store]
        running = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(procs)]
        results = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in running]
    return [{"procs": procs, "part": part, "median_s": f"{statistics.median(r[part] for r in results):.2f}",
             "max_s": f"{max(r[part] for r in results):.2f}"} for part in results[0]]


def main(argv: list[str] | None = None) -> list[dict]:
    parser = device_parser("startup_parts", __doc__)
    parser.add_argument("--procs", nargs="+", type=int, default=[1, 16], help="processes started at once")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.device, args.limit, args.store)))
        return []
    stamp = device_stamp(args.device)
    rows = [{**row, **stamp} for procs in args.procs for row in measure(procs, args.device, args.limit)]
    args.out.mkdir(parents=True, exist_ok=True)
    print(write_rows(args.out / "startup_parts.csv", COLUMNS, rows))
    return rows


if __name__ == "__main__":
    main()
