"""The optimised loop keeps the plain loop's semantics; stops (divergence, callbacks, time) behave."""

import math

import pytest
import torch
import torch.nn.functional as F

from colorize.data.faces import load_faces
from colorize.early_stopping import EarlyStopping
from colorize.models import ConvNet, UNet
from colorize.trainer import DeviceImages, Diverged, StopTraining, fit, train_epoch


@pytest.fixture(scope="module")
def faces_small(faces):
    splits = load_faces(str(faces), limit=64)
    dev = torch.device("cpu")
    return splits, DeviceImages.from_set(splits.train, dev), DeviceImages.from_set(splits.val, dev)


def reference_losses(splits, seed, steps_per_epoch_batch=16, lr=0.1):
    """The plainest loop: NCHW float tensors, same init seed and batch order, per-step losses."""
    torch.manual_seed(seed)
    model = ConvNet(layers=2, kernel_size=5, channels=16, tanh=True)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    x_all = splits.train.gray.float() / 127.5 - 1
    y_all = splits.train.rgb.float() / 127.5 - 1
    order = torch.randperm(len(x_all), generator=torch.Generator().manual_seed(seed))
    losses = []
    for start in range(0, len(x_all), steps_per_epoch_batch):
        idx = order[start : start + steps_per_epoch_batch]
        loss = F.mse_loss(model(x_all[idx]), y_all[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append((loss.item(), len(idx)))
    return model, losses


def test_optimised_loop_matches_the_plain_loop(faces_small):
    splits, train, _ = faces_small
    ref_model, losses = reference_losses(splits, seed=3)
    torch.manual_seed(3)
    model = ConvNet(layers=2, kernel_size=5, channels=16, tanh=True).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    metrics = train_epoch(model, opt, train, 16, torch.Generator().manual_seed(3), epoch=1, progress=False)
    expected = sum(l * n for l, n in losses) / sum(n for _, n in losses)
    assert metrics["mse"] == pytest.approx(expected, rel=1e-5)
    for (name, p), q in zip(model.named_parameters(), ref_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6, msg=name)


def test_diverging_loss_stops_at_once(faces_small):
    _, train, val = faces_small
    torch.manual_seed(0)
    model = ConvNet(layers=2, kernel_size=5, channels=8)
    opt = torch.optim.SGD(model.parameters(), lr=1e6)
    with pytest.raises(Diverged) as info:
        fit(model, opt, train, val, max_epochs=5, batch_size=16, generator=torch.Generator().manual_seed(0),
            progress=False)
    assert info.value.epoch == 1 and not math.isfinite(info.value.loss)


def test_callback_stop_restores_the_best_weights(faces_small):
    _, train, val = faces_small

    class Stop(StopTraining):
        pass

    def on_epoch(epoch, metrics):
        if epoch == 3:
            raise Stop("enough")

    torch.manual_seed(0)
    model = ConvNet(layers=2, kernel_size=3, channels=4)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    result = fit(model, opt, train, val, max_epochs=10, batch_size=16, generator=torch.Generator().manual_seed(0),
                 early_stopping=EarlyStopping(patience=5), on_epoch=on_epoch, progress=False)
    assert result.stopped_epoch == 3 and isinstance(result.stopped_by, Stop)
    assert result.best_epoch == min(range(1, 4), key=lambda e: result.history[e - 1]["val_mse"])


def test_time_budget_stops_before_overrunning(faces_small):
    _, train, val = faces_small
    model = ConvNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    result = fit(model, opt, train, val, max_epochs=1000, batch_size=16, generator=torch.Generator().manual_seed(0),
                 max_seconds=1e-9, progress=False)
    assert result.stopped_epoch == 1 and result.stopped_by.tag == "time_budget"


@pytest.mark.parametrize("chroma", [True, False])
def test_unet_keeps_the_luma_when_predicting_chroma(chroma):
    model = UNet(depth=3, channels=4, chroma=chroma)
    x = torch.rand(2, 1, 80, 80) * 2 - 1
    out = model(x)
    assert out.shape == (2, 3, 80, 80)
    if chroma:  # the BT.601 luma of the output is the input, whatever the chroma
        luma = 0.299 * out[:, 0] + 0.587 * out[:, 1] + 0.114 * out[:, 2]
        torch.testing.assert_close(luma, x[:, 0], atol=1e-5, rtol=0)
