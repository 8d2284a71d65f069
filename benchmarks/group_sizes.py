"""Member-epochs per second by fused group size, the whole step captured, in one process.

    python -m benchmarks.group_sizes --device cuda --out /tmp/out      # on a lent GPU (gpu_check.sh)
    python -m benchmarks.group_sizes --device cpu --limit 200 --sizes 1 2 --epochs 2

Why: 16 single trials in 16 processes made a lent H200 18 times as fast as one eager trial, because
each process was host-bound (the device 30 % busy; docs/gpu/README.md, 2026-12-04). With the whole
step one graph replay (training/step_graphs.py), what is left of a step is the device's own time.
A GPU without MPS runs one process's kernels at a time, so processes then add little, while a
fused group of G members does G members' work in one set of kernels. This measures, per group size
G, one process training G members of the study's 2-conv k5 c8 net (SGD lr 0.05, momentum 0.5,
batch 16, no early stopping) on the faces with `fit_group`, every epoch validated as in a sweep:
the first epoch (the capture included), the median of the later epochs (the slowest member's
`epoch_seconds`: its group's training and every member's validation up to its own), member-epochs
per second from that median, and the device's mean utilisation (nvidia-smi; empty on a CPU). The
members validate one after another after the group's step, so member i's `epoch_seconds` is the
step plus i validations: the spread between the first and the last member gives one validation's
seconds and the validations' share of the epoch (blank for a group of 1), which says whether
validating the group as one stacked model would be worth building. If
member-epochs per second keep growing with G, fuse; if they stay flat, single trials in processes
were as good (`--verdict` says which, as gpu_study.sh uses it). On a CPU it runs the eager group
step (`trainer.cuda_graphs` needs CUDA).
"""

from __future__ import annotations

import statistics

import torch

from benchmarks.common import device_parser, device_stamp, faces_on, write_rows
from benchmarks.fused_check import member
from benchmarks.throughput import GpuSampler
from colorize.names import EPOCH_SECONDS
from colorize.training.device_images import DeviceImages
from colorize.training.loop import FitResult, Member, fit_group

COLUMNS = ["size", "epochs", "first_epoch_s", "epoch_s", "member_epochs_per_s", "val_s_per_member", "val_share",
           "gpu_util", "faces", "device", "torch", "date"]


def members(size: int, epochs: int, device: torch.device) -> list[Member]:
    """`size` seeds of the study's 2-conv k5 c8 net, as the fused launcher makes of them."""
    graphs = "on" if device.type == "cuda" else "off"
    return [member(seed, 0.05, 0, epochs, device, graphs) for seed in range(size)]


def measure(size: int, epochs: int, train: DeviceImages, val: DeviceImages) -> dict:
    """One group of `size` trained for `epochs`: its row's figures."""
    with GpuSampler() as gpu:
        results = fit_group(members(size, epochs, train.gray.device), train, val)
    finished = [r for r in results if isinstance(r, FitResult)]
    if len(finished) < size:  # (lr 0.05 does not diverge: a diverged member is a bug to see, not a row)
        raise SystemExit(f"group_sizes: {size - len(finished)} member(s) of the group of {size} diverged")
    # a group's epoch: its slowest member's epoch_seconds (the group's step, then each validation)
    seconds = [[r.history[e][EPOCH_SECONDS] for r in finished] for e in range(epochs)]
    later = seconds[1:] or seconds
    steady = statistics.median(max(s) for s in later)
    val_s = statistics.median((max(s) - min(s)) / (size - 1) for s in later) if size > 1 else None
    return {"size": size, "epochs": epochs, "first_epoch_s": f"{max(seconds[0]):.4g}", "epoch_s": f"{steady:.4g}",
            "member_epochs_per_s": f"{size / steady:.2f}", "val_s_per_member": "" if val_s is None else f"{val_s:.4g}",
            "val_share": "" if val_s is None else f"{size * val_s / steady:.2f}", "gpu_util": gpu.mean}


def verdict(rows: list[dict], margin: float = 2.0) -> str:
    """"fuse" if the largest group's members train at least `margin` times as many epochs per second
    as the smallest group's, else "single". Why a margin: the study's fused groups are mostly 3 seeds,
    they leave fewer units to spread over the jobs, and a group trains until its last member stops."""
    rates = {int(r["size"]): float(r["member_epochs_per_s"]) for r in rows}
    return "fuse" if rates[max(rates)] >= margin * rates[min(rates)] else "single"


def main(argv: list[str] | None = None) -> list[dict]:
    parser = device_parser("group_sizes", __doc__)
    parser.add_argument("--sizes", nargs="+", type=int, default=[1, 3, 8, 15, 32], help="group sizes")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per group (the first includes the capture)")
    parser.add_argument("--verdict", action="store_true",
                        help="last, a line `verdict: fuse|single` (the largest group against the smallest)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    train, val = faces_on(device, args.limit)
    stamp = {**device_stamp(device.type), "faces": len(train)}
    rows = [{**measure(size, args.epochs, train, val), **stamp} for size in args.sizes]
    args.out.mkdir(parents=True, exist_ok=True)
    print(write_rows(args.out / "group_sizes.csv", COLUMNS, rows))
    if args.verdict:
        print(f"verdict: {verdict(rows)}")
    return rows


if __name__ == "__main__":
    main()
