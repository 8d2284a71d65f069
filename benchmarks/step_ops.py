"""Ops dispatched per training step, alone and as fused groups of several sizes: on a GPU each op
that computes is a kernel launch, and the study's tiny nets are launch-bound (docs/gpu/README.md).

    python -m benchmarks.step_ops                       # the study's 2-conv k5 c8 net, 1, 2, 4 and 8 members
    python -m benchmarks.step_ops --members 1 16 --overrides experiment=best

`run_steps` is also what tests/training/test_device_sync.py runs under torch's sync debug mode (on a
GPU) or with every host read counted (on the CPU): the steps of one epoch on 96 faces, with the
composed config's model, optimizer, loss, EMA and augmentations, alone or fused. Counted on the CPU,
the ops (not their device) decide the launches; views (select, detach, view) launch nothing.
"""

from __future__ import annotations

import argparse
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from colorize.config import build
from colorize.config.compose import compose_train
from colorize.data.faces import load_faces
from colorize.paths import faces_root
from colorize.training.averaging import WeightAverage
from colorize.training.device_images import DeviceImages, batches, group_batches
from colorize.training.epoch import EpochSums, group_step, train_step
from colorize.training.fused import StackedForward
from colorize.training.graphs import capture
from colorize.training.options import FitOptions
from colorize.training.precision import resolve_precision

STUDY_NET = ["model.layers=2", "model.kernel_size=5", "model.channels=8"]  # SGD, no augmentation
FACES = 96


def member(cfg, device: torch.device, seed: int) -> SimpleNamespace:
    """One run's model, optimizer, generator and EMA, as the loop's FitProgress holds them."""
    torch.manual_seed(seed)
    model = build(cfg.model).to(device).to(memory_format=torch.channels_last)
    ema = WeightAverage(model, cfg.trainer.ema) if cfg.trainer.ema else None
    return SimpleNamespace(model=model, optimizer=build(cfg.optimizer)(model.parameters()),
                           generator=torch.Generator().manual_seed(seed), ema=ema, epoch=1)


def run_steps(overrides: list[str], members: int, faces, device: torch.device, watch, graphs: bool = False) -> int:
    """One epoch of the composed config's model, optimizer, loss, EMA and augmentations on 96 faces
    (`members` > 1: that many seeds as one fused group; `graphs`: the step captured as a CUDA graph,
    as `trainer.cuda_graphs=on` does), every step after the first inside
    `watch(host_counters)`; how many steps ran inside it. `host_counters`: the ids of the optimizers'
    step counts, which torch keeps on the host for CUDA parameters too (Adam's `step` unless
    capturable): reading them waits for nothing."""
    cfg = compose_train(overrides)
    t = cfg.trainer
    train = DeviceImages.from_set(load_faces(str(faces), limit=FACES).train, device)
    options = FitOptions(1, t.batch_size, hflip=t.hflip, shift=t.shift, loss=build(cfg.loss), progress=False,
                         precision=resolve_precision(t.precision, device))  # best: bf16 where it is native
    runs = [member(cfg, device, seed) for seed in range(members)]
    for run in runs:
        run.options = options
    sums = EpochSums.zeros(device, members if members > 1 else None)
    fused = StackedForward([run.model for run in runs]) if members > 1 else None
    graphed = capture(runs[0].model, train.gray[: t.batch_size], required=True) if graphs else None

    def step(i: int, batch) -> None:
        if fused is not None:
            group_step(runs, batch, fused, sums, i)
        else:
            run = runs[0]
            train_step(run.model, run.optimizer, batch, options, run.ema, sums, i, graphed)

    if fused is not None:
        stream = enumerate(group_batches(train, t.batch_size, [run.generator for run in runs], options), start=1)
    else:
        stream = enumerate(batches(train, t.batch_size, runs[0].generator, options), start=1)
    step(*next(stream))  # the first step: cuDNN's choices, the allocator's first blocks
    host_counters = {id(state["step"]) for run in runs for state in run.optimizer.state.values()
                     if torch.is_tensor(state.get("step"))}
    checked = 0
    with watch(host_counters):
        for i, member_batches in stream:
            step(i, member_batches)
            checked += 1
    sums.read()  # the epoch's one read
    return checked



class OpCounter(TorchDispatchMode):
    """Counts the aten ops dispatched while it is active, by name."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def ops_per_step(overrides: list[str], members: int, faces) -> float:
    """Aten ops per training step (after the first) of `members` seeds, alone (1) or fused, on the CPU."""
    counter = OpCounter()

    @contextmanager
    def counting(_host_counters):
        with counter:
            yield

    steps = run_steps(overrides, members, faces, torch.device("cpu"), counting)
    return sum(counter.ops.values()) / steps


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.step_ops", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", nargs="+", type=int, default=[1, 2, 4, 8])
    parser.add_argument("--overrides", nargs="*", default=STUDY_NET)
    parser.add_argument("--faces", type=Path, default=None, help="the faces' root (default: colorize's)")
    args = parser.parse_args(argv)
    faces = args.faces or faces_root()
    rows = []
    for members in args.members:
        ops = ops_per_step(args.overrides, members, faces)
        rows.append({"members": members, "ops_per_step": ops, "ops_per_member": ops / members})
        print(f"{members} members: {ops:.0f} ops per step, {ops / members:.1f} per member", flush=True)
    return rows


if __name__ == "__main__":
    main()
