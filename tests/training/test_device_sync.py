"""A training step never waits for the device: within an epoch the host only queues work (the
brief's "never sync with the host per step"), with the study's net and with `experiment=best`'s
U-Net, AdamW, EMA, cast_split loss, mirroring and shifts.

On a GPU, torch's sync debug mode raises at any call that would synchronise, so every step after the
first runs under it (benchmarks/gpu_check.sh runs this file on a lent GPU; skipped without CUDA).
On the CPU the same steps run while every read of a tensor's value back to the host is counted:
none may happen (an epoch's one read comes after them). The augmentations' values are tested in
tests/training/test_augment.py."""

from contextlib import contextmanager

import pytest
import torch

from colorize.config import build
from colorize.config.compose import compose_train
from colorize.data.faces import load_faces
from colorize.training.averaging import WeightAverage
from colorize.training.device_images import DeviceImages, batches
from colorize.training.epoch import EpochSums, train_step
from colorize.training.options import FitOptions
from colorize.training.precision import resolve_precision

NETS = pytest.mark.parametrize("overrides", [
    ["model.layers=2", "model.kernel_size=5", "model.channels=8"],  # the study's net, SGD, no augmentation
    ["experiment=best"],
], ids=["study-net", "best"])
FACES = 96


def checked_steps(overrides: list[str], faces, device: torch.device, watch) -> int:
    """One epoch of the composed config's model, optimizer, loss, EMA and augmentations on 96 faces,
    every step after the first inside `watch(host_counters)`; how many steps ran inside it.
    `host_counters`: the ids of the optimizer's step counts, which torch keeps on the host for CUDA
    parameters too (Adam's `step` unless capturable): reading them waits for nothing."""
    cfg = compose_train(overrides)
    t = cfg.trainer
    train = DeviceImages.from_set(load_faces(str(faces), limit=FACES).train, device)
    model = build(cfg.model).to(device).to(memory_format=torch.channels_last)
    optimizer = build(cfg.optimizer)(model.parameters())
    options = FitOptions(1, t.batch_size, hflip=t.hflip, shift=t.shift, loss=build(cfg.loss), progress=False,
                         precision=resolve_precision(t.precision, device))  # best: bf16 where it is native
    ema = WeightAverage(model, t.ema) if t.ema else None
    sums = EpochSums.zeros(device)
    stream = enumerate(batches(train, t.batch_size, torch.Generator().manual_seed(0), options), start=1)
    step, batch = next(stream)  # the first step: cuDNN's choices, the allocator's first blocks
    train_step(model, optimizer, batch, options, ema, sums, step)
    checked = 0
    host_counters = {id(state["step"]) for state in optimizer.state.values() if torch.is_tensor(state.get("step"))}
    with watch(host_counters):
        for step, batch in stream:
            train_step(model, optimizer, batch, options, ema, sums, step)
            checked += 1
    sums.read()  # the epoch's one read
    return checked


@NETS
def test_no_step_reads_a_value_back_to_the_host(overrides, faces, monkeypatch):
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

    assert checked_steps(overrides, faces, torch.device("cpu"), counting_reads) == FACES // 16 - 1
    assert reads == [], reads


@pytest.mark.skipif(not torch.cuda.is_available(), reason="a CUDA device's sync debug mode")
@NETS
def test_no_step_waits_for_the_gpu(overrides, faces):
    @contextmanager
    def sync_debug_error(host_counters):
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            yield
        finally:
            torch.cuda.set_sync_debug_mode("default")

    assert checked_steps(overrides, faces, torch.device("cuda"), sync_debug_error) == FACES // 16 - 1
