"""CUDA graphs for the step (colorize/training/graphs.py): the decision is tested everywhere, the
capture only where there is a GPU (skipped here otherwise)."""

import pytest
import torch

from colorize.config import model_of
from colorize.errors import ColorizeError
from colorize.training.device_images import DeviceImages
from colorize.training.graphs import GraphedForward, use_cuda_graphs
from colorize.training.loop import Member, capture_for, fit, fit_group
from colorize.training.options import FitOptions
from colorize.training.step_graphs import StepGraphs
from tests.conftest import run_cli

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("setting,device,precision,expected", [
    ("off", CUDA, "fp32", False), ("auto", CUDA, "fp32", True), ("on", CUDA, "fp32", True),
    ("auto", CPU, "fp32", False), ("auto", CUDA, "bf16", False), ("off", CPU, "fp32", False),
    ("forward", CUDA, "fp32", True),
])
def test_auto_means_on_for_cuda_in_fp32_and_off_elsewhere(setting, device, precision, expected):
    assert use_cuda_graphs(setting, device, precision) is expected


@pytest.mark.parametrize("setting", ["on", "forward"])
@pytest.mark.parametrize("device,precision,why", [(CPU, "fp32", "needs a CUDA device"),
                                                   (CUDA, "bf16", "needs trainer.precision=fp32")])
def test_on_where_it_cannot_apply_is_one_clear_error(setting, device, precision, why):
    with pytest.raises(ColorizeError, match=f"trainer.cuda_graphs={setting} {why}"):
        use_cuda_graphs(setting, device, precision)


@pytest.mark.e2e
def test_cuda_graphs_on_without_a_gpu_is_one_line_before_any_data_is_read(tmp_path):
    proc = run_cli("trainer.cuda_graphs=on", "trainer.device=cpu", "data=faces", "data.root=/nonexistent",
                   f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("colorize: error: trainer.cuda_graphs=on needs a CUDA device")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
@pytest.mark.parametrize("optimizer,setting,captured", [
    ("sgd", "on", StepGraphs), ("adam", "on", GraphedForward), ("sgd", "forward", GraphedForward)])
def test_a_graphed_run_trains_as_the_eager_one(faces, optimizer, setting, captured):
    """Same seed, same batches: the per-epoch metrics agree to float tolerance (graphs may pick other
    kernels), and the warm-up moves neither BatchNorm's statistics nor SGD's momentum. SGD's whole
    step is captured (step_graphs.py: both batch sizes of an epoch); Adam's forward and backward
    (graphs.py: the last, smaller batch eager), and SGD's too with `trainer.cuda_graphs=forward`."""
    from types import SimpleNamespace

    from colorize.data.faces import load_faces

    splits = load_faces(str(faces), limit=100)
    train, val = (DeviceImages.from_set(s, CUDA) for s in (splits.train, splits.val))

    def net_and_optimizer():
        torch.manual_seed(0)
        model = model_of("baseline", layers=2, channels=8, kernel_size=5, batch_norm=True).to(CUDA)
        model = model.to(memory_format=torch.channels_last)
        opt = (torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9) if optimizer == "sgd"
               else torch.optim.Adam(model.parameters(), lr=1e-3))
        return model, opt

    def run(graphs):
        model, opt = net_and_optimizer()
        return fit(model, opt, train, val, torch.Generator().manual_seed(0),
                   FitOptions(max_epochs=3, batch_size=16, progress=False, cuda_graphs=graphs)).history

    model, opt = net_and_optimizer()
    probe = SimpleNamespace(model=model, optimizer=opt, generator=torch.Generator(), ema=None, epoch=1,
                            options=FitOptions(max_epochs=1, batch_size=16, progress=False, cuda_graphs=setting))
    assert isinstance(capture_for([probe], train), captured)
    eager, graphed = run("off"), run(setting)
    for a, b in zip(eager, graphed):
        for key in ("train_mse", "val_mse", "val_margin12_accuracy"):
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), key


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_a_graphed_fused_group_trains_as_the_eager_group(faces):
    """`trainer.cuda_graphs=on` for a fused group (opt-in): 3 seeds, one of which stops early (the
    group is captured again without it); per epoch and member, the metrics agree with the eager
    group's to float tolerance (TF32 off: the comparison is of the capture, not of TF32)."""
    from colorize.data.faces import load_faces

    splits = load_faces(str(faces), limit=100)
    train, val = (DeviceImages.from_set(s, CUDA) for s in (splits.train, splits.val))

    def run(graphs):
        members = []
        for seed, epochs in ((0, 4), (1, 2), (2, 4)):  # seed 1 leaves after 2 epochs
            torch.manual_seed(seed)
            model = model_of("baseline", layers=2, channels=8, kernel_size=5, batch_norm=True).to(CUDA)
            model = model.to(memory_format=torch.channels_last)
            options = FitOptions(max_epochs=epochs, batch_size=16, progress=False, cuda_graphs=graphs)
            members.append(Member(model, torch.optim.SGD(model.parameters(), lr=0.05),
                                  torch.Generator().manual_seed(seed), options))
        return [result.history for result in fit_group(members, train, val)]

    allow_tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        eager, graphed = run("off"), run("on")
    finally:
        torch.backends.cudnn.allow_tf32 = allow_tf32
    assert [len(h) for h in graphed] == [4, 2, 4]
    for member_eager, member_graphed in zip(eager, graphed):
        for a, b in zip(member_eager, member_graphed):
            for key in ("train_mse", "val_mse", "val_margin12_accuracy"):
                assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), key
