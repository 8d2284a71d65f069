"""A training step never waits for the device: within an epoch the host only queues work (the
brief's "never sync with the host per step"), with the study's net alone and as a fused group of 3
seeds, and with `experiment=best`'s U-Net, AdamW, EMA, cast_split loss, mirroring and shifts.

On a GPU, torch's sync debug mode raises at any call that would synchronise, so every step after the
first runs under it (benchmarks/gpu_check.sh runs this file on a lent GPU; skipped without CUDA).
On the CPU the same steps run while every read of a tensor's value back to the host is counted:
none may happen (an epoch's one read comes after them). The augmentations' values are tested in
tests/training/test_augment.py."""

from contextlib import contextmanager

import pytest
import torch

from benchmarks.step_ops import FACES, STUDY_NET, ops_per_step, run_steps

NETS = pytest.mark.parametrize("overrides, members", [
    (STUDY_NET, 1), (STUDY_NET, 3),  # alone, and 3 seeds as one fused group (group_step)
    (["experiment=best"], 1),
], ids=["study-net", "study-net-fused3", "best"])


def read_counter(monkeypatch, reads: list):
    """A `watch` that appends the name of every read of a tensor's value back to the host to `reads`."""
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

    return counting_reads


@NETS
def test_no_step_reads_a_value_back_to_the_host(overrides, members, faces, monkeypatch):
    reads = []
    watch = read_counter(monkeypatch, reads)
    assert run_steps(overrides, members, faces, torch.device("cpu"), watch) == FACES // 16 - 1
    assert reads == [], reads


def whole_step_epoch(members: int, faces, device: torch.device, watch) -> int:
    """The study's net (SGD), alone or `members` seeds fused, its whole step as CUDA graphs where
    `device` is CUDA (step_graphs.py; on the CPU the same body, eager): a first epoch, then a second
    one's steps inside `watch(set())`; the steps the second ran."""
    from benchmarks.step_ops import member
    from colorize.config.compose import compose_train
    from colorize.data.faces import load_faces
    from colorize.training.device_images import DeviceImages
    from colorize.training.options import FitOptions
    from colorize.training.step_graphs import StepGraphs

    cfg = compose_train(STUDY_NET)
    train = DeviceImages.from_set(load_faces(str(faces), limit=FACES).train, device)
    runs = [member(cfg, device, seed) for seed in range(members)]
    for run in runs:
        run.options = FitOptions(1, 16, progress=False)
    steps = StepGraphs(runs, train, capture=device.type == "cuda")
    steps.epoch()
    ran = []
    with watch(set()):
        steps.steps(ran.append)
    steps.sums.read()
    return len(ran)


@pytest.mark.parametrize("members", [1, 3])
def test_no_step_of_a_whole_step_graph_reads_a_value_back(members, faces, monkeypatch):
    reads = []
    assert whole_step_epoch(members, faces, torch.device("cpu"), read_counter(monkeypatch, reads)) == FACES // 16
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
    assert run_steps(overrides, members, faces, torch.device("cuda"), sync_debug_error) == FACES // 16 - 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="a CUDA device's sync debug mode")
def test_no_graphed_step_waits_for_the_gpu(faces):
    cuda = torch.device("cuda")
    assert run_steps(STUDY_NET, 1, faces, cuda, sync_debug_error, graphs=True) == FACES // 16 - 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="a CUDA device's sync debug mode")
@pytest.mark.parametrize("members", [1, 3])
def test_no_step_of_a_whole_step_graph_waits_for_the_gpu(members, faces):
    assert whole_step_epoch(members, faces, torch.device("cuda"), sync_debug_error) == FACES // 16


def test_a_fused_group_dispatches_its_per_member_work_as_one_op(faces):
    """A fused step's batches, loss and metric sums are one set of ops for the whole group, so 8 fused
    seeds dispatch about half the ops of 8 trials alone (on a GPU each op that computes is a launch).
    Before, each member's own batch, loss and sums made a fused step of 8 cost 511 ops against 8 x 58
    alone, and it ran no faster per trial on an H200 (docs/gpu/README.md, 2026-12-04)."""
    alone, fused4, fused8 = (ops_per_step(STUDY_NET, m, faces) for m in (1, 4, 8))
    assert fused8 < 0.6 * 8 * alone
    assert (fused8 - fused4) / 4 < 20  # each further member: its optimizer step and views, ~16 ops
