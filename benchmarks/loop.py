"""Epoch time of colorize's loop vs the starter-style loop; achieved GFLOP/s vs matmul."""

from __future__ import annotations

import time

import torch
from torch import nn

from benchmarks.common import Row, median_of, timed
from benchmarks.starter import StarterFaces, starter_epoch
from colorize.data.faces import load_faces
from colorize.models import ConvNet
from colorize.paths import faces_root
from colorize.trainer import DeviceImages, train_epoch

NETS = {  # the study's 1-, 2- and 4-conv nets (2-conv/16/k5/tanh is the report's best)
    "1-conv k3": dict(layers=1, kernel_size=3, channels=8),
    "2-conv k5 c16 +tanh": dict(layers=2, kernel_size=5, channels=16, tanh=True),
    "4-conv k5 c8": dict(layers=4, kernel_size=5, channels=8),
}


def conv_flops_per_image(model: nn.Module, h: int = 80, w: int = 80) -> float:
    """Training FLOPs per image: 2 per MAC, x3 for forward + input grad + weight grad
    (x2 for the first conv, whose input needs no gradient)."""
    total = 0.0
    for i, conv in enumerate(m for m in model.modules() if isinstance(m, nn.Conv2d)):
        macs = h * w * conv.out_channels * conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
        total += 2 * macs * (2 if i == 0 else 3)
    return total


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    seconds, _ = median_of(lambda: timed(lambda: a @ b), repeats)
    return 2 * n**3 / seconds / 1e9


def epoch_times(repeats: int, batch_size: int = 16, lr: float = 0.1) -> list[Row]:
    root = faces_root()
    splits = load_faces(str(root))
    train = DeviceImages.from_set(splits.train, torch.device("cpu"))
    starter_set = StarterFaces(root / "train" / "images")
    peak = matmul_gflops()
    rows = [Row("machine", "float32 matmul 2048x2048", peak, "GFLOP/s", note=f"{torch.get_num_threads()} threads")]
    for name, kwargs in NETS.items():
        torch.manual_seed(0)
        ours = ConvNet(**kwargs).to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(ours.parameters(), lr=lr)
        gen = torch.Generator().manual_seed(0)
        torch.manual_seed(0)
        theirs = ConvNet(**kwargs)
        opt2 = torch.optim.SGD(theirs.parameters(), lr=lr)
        t_ours, t_theirs = [], []
        for r in range(repeats):  # interleaved, same process
            t_ours.append(timed(lambda: train_epoch(ours, opt, train, batch_size, gen, r + 1, progress=False)))
            t_theirs.append(timed(lambda: starter_epoch(theirs, opt2, starter_set, batch_size, r)))
        med_ours, med_theirs = sorted(t_ours)[len(t_ours) // 2], sorted(t_theirs)[len(t_theirs) // 2]
        n = len(train)
        gflops = conv_flops_per_image(ours) * n / med_ours / 1e9
        rows += [
            Row("epoch", f"{name}: colorize loop", med_ours, "s/epoch", t_ours, f"{n / med_ours:.0f} images/s"),
            Row("epoch", f"{name}: starter-style loop", med_theirs, "s/epoch", t_theirs, f"{n / med_theirs:.0f} images/s"),
            Row("epoch", f"{name}: speed-up", med_theirs / med_ours, "x", note="same process, interleaved"),
            Row("flops", f"{name}: achieved", gflops, "GFLOP/s", note=f"{100 * gflops / peak:.0f}% of matmul"),
        ]
    return rows
