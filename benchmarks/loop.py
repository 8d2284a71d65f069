"""Epoch time of colorize's loop vs the starter-style loop; achieved GFLOP/s vs matmul."""

from __future__ import annotations

import statistics
from typing import cast

import torch
from torch import nn

from benchmarks.common import Row, median_of, timed
from benchmarks.starter import StarterFaces, starter_epoch
from colorize.config import model_of
from colorize.data.faces import load_faces

from colorize.paths import faces_root
from colorize.training.device_images import DeviceImages
from colorize.training.epoch import train_epoch
from colorize.training.options import FitOptions
from colorize.training.precision import bf16_is_native, probe

BF16_NET = "2-conv k5 c16 +tanh"
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
        ours = model_of("baseline", **kwargs).to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(ours.parameters(), lr=lr)
        gen = torch.Generator().manual_seed(0)
        torch.manual_seed(0)
        theirs = model_of("baseline", **kwargs)
        opt2 = torch.optim.SGD(theirs.parameters(), lr=lr)
        # bf16 autocast (different arithmetic, so not the comparison), only where it is native: emulated
        # bf16 costs ~10x fp32 (an AVX2-only CPU), which trainer.precision=auto never chooses
        with_bf16 = name == BF16_NET and bf16_is_native(probe(torch.device("cpu")))
        if with_bf16:
            torch.manual_seed(0)
            half = model_of("baseline", **kwargs).to(memory_format=torch.channels_last)
            opt3 = torch.optim.SGD(half.parameters(), lr=lr)
        t_ours, t_theirs, t_bf16 = [], [], []
        for r in range(repeats):  # interleaved, same process
            options = FitOptions(1, batch_size, progress=False)
            t_ours.append(timed(lambda: train_epoch(ours, opt, train, gen, r + 1, options)))
            t_theirs.append(timed(lambda: starter_epoch(theirs, opt2, starter_set, batch_size, r)))
            if with_bf16:
                t_bf16.append(timed(lambda: train_epoch(half, opt3, train, gen, r + 1,
                                                        FitOptions(1, batch_size, precision="bf16", progress=False))))
        med_ours, med_theirs = statistics.median(t_ours), statistics.median(t_theirs)
        n = len(train)
        gflops = conv_flops_per_image(ours) * n / med_ours / 1e9
        rows += [
            Row("epoch", f"{name}: colorize loop", med_ours, "s/epoch", t_ours, f"{n / med_ours:.0f} images/s"),
            Row("epoch", f"{name}: starter-style loop", med_theirs, "s/epoch", t_theirs,
                f"{n / med_theirs:.0f} images/s"),
            Row("epoch", f"{name}: speed-up", med_theirs / med_ours, "x", note="same process, interleaved"),
            Row("flops", f"{name}: achieved", gflops, "GFLOP/s", note=f"{100 * gflops / peak:.0f}% of matmul"),
        ]
        if with_bf16:
            med = statistics.median(t_bf16)
            rows.append(Row("epoch", f"{name}: colorize loop, bf16 (trainer.precision=auto here)", med, "s/epoch",
                            t_bf16, f"{med_theirs / med:.2f}x the starter loop, {med_ours / med:.2f}x fp32"))
    return rows


def conv_shapes(repeats: int, batch_size: int = 16) -> list[Row]:
    """Why the 2-conv net stays far from peak: forward + backward of its 16->3 output conv
    against a 16->16 conv of the same size (oneDNN computes output channels in blocks of 16)."""
    rows, times = [], {}
    for cout in (3, 16):
        conv = nn.Conv2d(16, cout, 5, padding=2).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        x = torch.randn(batch_size, 16, 80, 80).contiguous(memory_format=torch.channels_last).requires_grad_()

        def step(n: int = 1) -> None:
            for _ in range(n):
                conv(x).sum().backward()

        step(5)
        samples = [timed(lambda: step(20)) / 20 * 1e3 for _ in range(repeats)]
        times[cout] = statistics.median(samples)
        flops = 3 * 2 * batch_size * 80 * 80 * 16 * cout * 25
        rows.append(Row("conv", f"16->{cout} k5 conv, batch {batch_size}: forward + backward", times[cout], "ms",
                        samples, f"{flops / times[cout] / 1e6:.0f} GFLOP/s"))
    rows.append(Row("conv", "16->3 vs 16->16 conv time", times[3] / times[16], "x",
                    note=f"for {16 / 3:.1f}x fewer FLOPs"))
    return rows


def compiled(repeats: int, batch_size: int = 16, lr: float = 0.1) -> list[Row]:
    """torch.compile (inductor) on the 2-conv net: epoch time after warm-up, and the warm-up cost."""
    train = DeviceImages.from_set(load_faces(str(faces_root())).train, torch.device("cpu"))
    kwargs = NETS[BF16_NET]
    models = {}
    for mode in ("eager", "compiled"):
        torch.manual_seed(0)
        net = model_of("baseline", **kwargs).to(memory_format=torch.channels_last)
        runner = net if mode == "eager" else cast(nn.Module, torch.compile(net))  # (a module in: its wrapper out)
        models[mode] = (runner, torch.optim.SGD(net.parameters(), lr=lr))
    gen = torch.Generator().manual_seed(0)
    warmup = timed(lambda: train_epoch(*models["compiled"], train, gen, 0, FitOptions(1, batch_size, progress=False)))
    samples: dict[str, list[float]] = {"eager": [], "compiled": []}
    for r in range(repeats):  # interleaved
        for mode, (net, opt) in models.items():
            options = FitOptions(1, batch_size, progress=False)
            samples[mode].append(timed(lambda: train_epoch(net, opt, train, gen, r + 1, options)))
    eager, comp = statistics.median(samples["eager"]), statistics.median(samples["compiled"])
    return [
        Row("compile", f"{BF16_NET}: eager", eager, "s/epoch", samples["eager"]),
        Row("compile", f"{BF16_NET}: torch.compile", comp, "s/epoch", samples["compiled"],
            f"{eager / comp:.2f}x eager; first (compiling) epoch {warmup:.1f} s"),
    ]
