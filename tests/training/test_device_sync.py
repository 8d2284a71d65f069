"""A training step never waits for the device: within an epoch the host only queues work (the
brief's "never sync with the host per step"), with the study's net alone and as a fused group of 3
seeds, and with `experiment=best`'s U-Net, AdamW, EMA, cast_split loss, mirroring and shifts.

On a GPU, torch's sync debug mode raises at any call that would synchronise, so every step after the
first runs under it (benchmarks/gpu_check.sh runs this file on a lent GPU; skipped without CUDA).
On the CPU the same steps run while every read of a tensor's value back to the host is counted:
none may happen (an epoch's one read comes after them). The augmentations' values are tested in
tests/training/test_augment.py."""

from contextlib import contextmanager
from types import SimpleNamespace

import pytest
import torch

from colorize.config import build
from colorize.config.compose import compose_train
from colorize.data.faces import load_faces
from colorize.training.averaging import WeightAverage
from colorize.training.device_images import DeviceImages, batches
from colorize.training.epoch import EpochSums, group_step, train_step
from colorize.training.fused import StackedForward
from colorize.training.graphs import capture
from colorize.training.options import FitOptions
from colorize.training.precision import resolve_precision

STUDY_NET = ["model.layers=2", "model.kernel_size=5", "model.channels=8"]  # SGD, no augmentation
NETS = pytest.mark.parametrize("overrides, members", [
    (STUDY_NET, 1), (STUDY_NET, 3),  # alone, and 3 seeds as one fused group (group_step)
    (["experiment=best"], 1),
], ids=["study-net", "study-net-fused3", "best"])
FACES = 96


def member(cfg, device: torch.device, seed: int) -> SimpleNamespace:
    """One run's model, optimizer, generator and EMA, as the loop's FitProgress holds them."""
    torch.manual_seed(seed)
    model = build(cfg.model).to(device).to(memory_format=torch.channels_last)
    ema = WeightAverage(model, cfg.trainer.ema) if cfg.trainer.ema else None
    return SimpleNamespace(model=model, optimizer=build(cfg.optimizer)(model.parameters()),
                           generator=torch.Generator().manual_seed(seed), ema=ema, epoch=1)


def checked_steps(overrides: list[str], members: int, faces, device: torch.device, watch, graphs: bool = False) -> int:
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
    sums = [EpochSums.zeros(device) for _ in runs]
    fused = StackedForward([run.model for run in runs]) if members > 1 else None
    graphed = capture(runs[0].model, train.gray[: t.batch_size], required=True) if graphs else None

    def step(i: int, member_batches) -> None:
        if fused is not None:
            group_step(runs, member_batches, fused, sums, i)
        else:
            run = runs[0]
            train_step(run.model, run.optimizer, member_batches[0], options, run.ema, sums[0], i, graphed)

    stream = enumerate(zip(*(batches(train, t.batch_size, run.generator, options) for run in runs)), start=1)
    step(*next(stream))  # the first step: cuDNN's choices, the allocator's first blocks
    host_counters = {id(state["step"]) for run in runs for state in run.optimizer.state.values()
                     if torch.is_tensor(state.get("step"))}
    checked = 0
    with watch(host_counters):
        for i, member_batches in stream:
            step(i, member_batches)
            checked += 1
    for member_sums in sums:
        member_sums.read()  # the epoch's one read
    return checked


@NETS
def test_no_step_reads_a_value_back_to_the_host(overrides, members, faces, monkeypatch):
    reads = []

    @contextmanager
    def counting_reads(host_counters):
        def counted(name, original):
            def read(self, *args):
                if id(self) not in host_counters:
                    reads.append(name)
                return original(self, *args)
            return read

        with monkeypatch.context() as m:
            for name in ("item", "tolist", "__bool__", "__float__", "__int__", "numpy"):
                m.setattr(torch.Tensor, name, counted(name, getattr(torch.Tensor, name)))
            yield

    assert checked_steps(overrides, members, faces, torch.device("cpu"), counting_reads) == FACES // 16 - 1
    assert reads == [], reads


@contextmanager
def sync_debug_error(host_counters):
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="a CUDA device's sync debug mode")
@NETS
def test_no_step_waits_for_the_gpu(overrides, members, faces):
    assert checked_steps(overrides, members, faces, torch.device("cuda"), sync_debug_error) == FACES // 16 - 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="a CUDA device's sync debug mode")
def test_no_graphed_step_waits_for_the_gpu(faces):
    cuda = torch.device("cuda")
    assert checked_steps(STUDY_NET, 1, faces, cuda, sync_debug_error, graphs=True) == FACES // 16 - 1
