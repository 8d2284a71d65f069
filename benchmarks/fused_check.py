"""Fused against separate, on one device: a fused group's per-epoch metrics against the same trials
trained one at a time, on the same device and images (the GPU check's correctness check).

    python -m benchmarks.fused_check --device cuda --out /tmp/out     # on a lent GPU (benchmarks/gpu_check.sh)
    python -m benchmarks.fused_check --device cpu --limit 48 --epochs 3   # the same check on the CPU

The group is what `hydra/launcher=fused` makes of the study's lr sweep with seeds, on its 2-conv k5 c8
net (SGD with momentum 0.5, batch 16): seeds 0, 1, 2 at lr 0.1 and 0.01 with the study's early
stopping (val MSE, patience 2 here, epsilon 5e-6), and one member at lr 50, which diverges and must
leave the group at the end of that epoch, as it does alone. `fit_group` trains them as one stacked
model; then each is trained alone with `fit`. Per member: every epoch's train MSE, val MSE and val
12-margin accuracy, compared by relative difference, and its best and last epochs, which must match.

The tolerance, in float32 with TF32 off (`ieee`, the gate): a relative difference of 1e-4 for the
MSEs and an absolute one of 1e-3 for the accuracy. A fused step computes each member's convolutions
inside one grouped convolution per layer, where the member alone runs its own: the same products,
summed in another order by another kernel, so each step's result differs by float32 rounding (about
1e-7 relative) and training carries that forward. The accuracy counts values within the margin after
rounding to 0..255, which such a difference can tip across a boundary one value at a time, hence an
absolute bound for it. On the CPU (Zen 4, `AVX512`, 1,000 faces, 6 epochs: `python -m
benchmarks.fused_check --device cpu`) the largest differences were 2.4e-7 (val MSE) and 3.1e-7
(accuracy); a member compared with the run of another seed differs by 0.3 and 0.1 (48 faces, 3 epochs:
tests/training/test_fused.py). The bounds leave two orders of magnitude for other kernels' rounding
and are far below a member trained on anything else. On CUDA the check runs a second time with TF32
convolutions (`tf32`, cuDNN's default on Ampere and later, which colorize leaves as it is): their
products keep 10 bits of mantissa, so that row is reported against 1e-2 and does not gate.
"""

from __future__ import annotations

import sys
from typing import Sequence

import torch

from benchmarks.common import device_parser, device_stamp, faces_on, write_rows
from colorize.config import model_of
from colorize.training.device_images import DeviceImages
from colorize.training.early_stopping import EarlyStopping
from colorize.training.epoch import Diverged
from colorize.training.loop import FitResult, Member, fit, fit_group
from colorize.training.options import FitOptions

# each metric's measure of difference: relative for the MSEs; absolute for the accuracy, a count of
# values within the margin after rounding to 0..255, which float rounding can move by whole values
METRICS = {"train_mse": "rel", "val_mse": "rel", "val_margin12_accuracy": "abs"}
Settings = tuple[int, float, int]  # (seed, lr, patience; 0: no early stopping)
MEMBERS: list[Settings] = [(0, 0.1, 2), (1, 0.1, 2), (2, 0.1, 2), (0, 0.01, 2), (1, 0.01, 2), (2, 0.01, 2),
                           (3, 50.0, 0)]
TOLERANCE = {"ieee": {"rel": 1e-4, "abs": 1e-3}, "tf32": {"rel": 1e-2, "abs": 1e-2}}  # the docstring says why
COLUMNS = ["device", "precision", "faces", "members", "epochs", *(f"max_{kind}_{m}" for m, kind in METRICS.items()),
           "epochs_agree", "tolerance", "verdict", "torch", "date"]


def member(seed: int, lr: float, patience: int, epochs: int, device: torch.device, cuda_graphs: str = "off") -> Member:
    """One trial of the study's 2-conv k5 c8 net (SGD, momentum 0.5, batch 16) as the fused launcher
    makes it; `patience` 0: no early stopping."""
    torch.manual_seed(seed)
    net = model_of("baseline", layers=2, kernel_size=5, channels=8).to(device, memory_format=torch.channels_last)
    options = FitOptions(max_epochs=epochs, batch_size=16, progress=False, cuda_graphs=cuda_graphs,
                         early_stopping=EarlyStopping(5e-6, patience) if patience else None)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.5)
    return Member(net, optimizer, torch.Generator().manual_seed(seed), options)


def difference(kind: str, a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12) if kind == "rel" else abs(a - b)


def compare(together: Sequence[FitResult | Diverged], alone: Sequence[FitResult | Diverged]) -> dict:
    """Per metric, the largest difference (METRICS: relative or absolute) over every member's every
    epoch; whether every member ended as alone (the same best and last epochs, or diverged at the same
    epoch and step)."""
    worst, agree = dict.fromkeys(METRICS, 0.0), True
    for fused, single in zip(together, alone, strict=True):
        if isinstance(fused, Diverged) and isinstance(single, Diverged):
            agree &= (fused.epoch, fused.step) == (single.epoch, single.step)
            continue
        if isinstance(fused, Diverged) or isinstance(single, Diverged):  # one diverged, the other not
            agree = False
            continue
        agree &= (fused.best_epoch, fused.stopped_epoch) == (single.best_epoch, single.stopped_epoch)
        for a, b in zip(fused.history, single.history):
            for key, kind in METRICS.items():
                worst[key] = max(worst[key], difference(kind, a[key], b[key]))
    return {"max": worst, "epochs_agree": agree}


def fused(members: Sequence[Settings], train: DeviceImages, val: DeviceImages, epochs: int,
          device: torch.device) -> list[FitResult | Diverged]:
    return fit_group([member(seed, lr, patience, epochs, device) for seed, lr, patience in members], train, val)


def alone(members: Sequence[Settings], train: DeviceImages, val: DeviceImages, epochs: int,
          device: torch.device) -> list[FitResult | Diverged]:
    results: list[FitResult | Diverged] = []
    for seed, lr, patience in members:
        m = member(seed, lr, patience, epochs, device)
        try:
            results.append(fit(m.model, m.optimizer, train, val, m.generator, m.options))
        except Diverged as diverged:
            results.append(diverged)
    return results


def check(train: DeviceImages, val: DeviceImages, epochs: int, device: torch.device) -> dict:
    """The group fused, then each member alone: `compare`'s figures."""
    return compare(fused(MEMBERS, train, val, epochs, device), alone(MEMBERS, train, val, epochs, device))


def set_conv_precision(precision: str) -> None:
    """cuDNN convolutions in full float32 (`ieee`) or TF32 (`tf32`); the newer API where torch has it."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        conv.fp32_precision = precision
    else:
        torch.backends.cudnn.allow_tf32 = precision == "tf32"


def row(result: dict, precision: str, faces: int, epochs: int, stamp: dict) -> dict:
    tolerance = TOLERANCE[precision]
    ok = result["epochs_agree"] and all(result["max"][m] <= tolerance[kind] for m, kind in METRICS.items())
    return {"precision": precision, "faces": faces, "members": len(MEMBERS), "epochs": epochs,
            **{f"max_{kind}_{m}": f"{result['max'][m]:.2e}" for m, kind in METRICS.items()},
            "epochs_agree": result["epochs_agree"], "tolerance": f"rel {tolerance['rel']:g}, abs {tolerance['abs']:g}",
            "verdict": "pass" if ok else "FAIL", **stamp}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = device_parser("fused_check", __doc__, limit=1000)
    parser.add_argument("--epochs", type=int, default=6, help="at most this many epochs per member")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    train, val = faces_on(device, args.limit)
    stamp = device_stamp(device.type)
    rows = []
    for precision in (["ieee", "tf32"] if device.type == "cuda" else ["ieee"]):
        set_conv_precision(precision)
        rows.append(row(check(train, val, args.epochs, device), precision, len(train), args.epochs, stamp))
    set_conv_precision("tf32")  # torch's default again
    print(write_rows(args.out / "fused_check.csv", COLUMNS, rows))
    gate = rows[0]
    worst = ", ".join(f"{m} {gate[f'max_{kind}_{m}']} ({kind})" for m, kind in METRICS.items())
    print(f"fused vs separate: {gate['verdict']} ({gate['precision']}, {len(train)} faces: largest differences "
          f"{worst}; tolerance {gate['tolerance']})")
    return rows


if __name__ == "__main__":
    sys.exit(0 if main()[0]["verdict"] == "pass" else 1)
