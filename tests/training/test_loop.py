"""The optimised loop keeps the plain loop's semantics; stops (divergence, callbacks, time) behave."""

import copy
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from colorize.config import model_of
from colorize.data.faces import load_faces
from colorize.training.early_stopping import EarlyStopping

from colorize.training import schedules
from colorize.training.callback import Callback, StopTraining
from colorize.training.device_images import DeviceImages
from colorize.training.epoch import Diverged, train_epoch
from colorize.training.loop import FitResult, TimeBudget, epochs_in_budget, fit
from colorize.training.options import FitOptions


def run_fit(model, opt, train, val, *, callbacks=(), resume=None, **options):
    """`fit` with generator seed 0, no progress bar, the options as keywords."""
    options.setdefault("progress", False)
    return fit(model, opt, train, val, torch.Generator().manual_seed(0), FitOptions(**options), callbacks, resume)


def options(batch_size, **values):
    """FitOptions for one epoch of `train_epoch`, no progress bar."""
    return FitOptions(max_epochs=1, batch_size=batch_size, progress=False, **values)


class Recorder(Callback):
    """Keeps a copy of every epoch's TrainState (what resume takes)."""

    def __init__(self, states):
        self.states = states

    def on_epoch_end(self, epoch, metrics, state):
        self.states.append(copy.deepcopy(state))


@pytest.fixture(scope="module")
def faces_small(faces):
    splits = load_faces(str(faces), limit=64)
    dev = torch.device("cpu")
    return splits, DeviceImages.from_set(splits.train, dev), DeviceImages.from_set(splits.val, dev)


def reference_losses(splits, seed, steps_per_epoch_batch=16, lr=0.1):
    """The plainest loop: NCHW float tensors, same init seed and batch order, per-step losses."""
    torch.manual_seed(seed)
    model = model_of("baseline", layers=2, kernel_size=5, channels=16, tanh=True)
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
    model = model_of("baseline", layers=2, kernel_size=5, channels=16, tanh=True).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    metrics = train_epoch(model, opt, train, torch.Generator().manual_seed(3), 1, options(16))
    expected = sum(loss * n for loss, n in losses) / sum(n for _, n in losses)
    assert metrics["mse"] == pytest.approx(expected, rel=1e-5)
    for (name, p), q in zip(model.named_parameters(), ref_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6, msg=name)


def test_diverging_loss_stops_at_once(faces_small):
    _, train, val = faces_small
    torch.manual_seed(0)
    model = model_of("baseline", layers=2, kernel_size=5, channels=8)
    opt = torch.optim.SGD(model.parameters(), lr=1e6)
    with pytest.raises(Diverged) as info:
        run_fit(model, opt, train, val, max_epochs=5, batch_size=16, progress=False)
    assert info.value.epoch == 1 and not math.isfinite(info.value.loss)


def test_a_loss_gone_non_finite_mid_epoch_fails_the_epoch_naming_its_first_bad_step(faces_small):
    """The loop does not read the loss per step: a NaN at step 3 is found at the epoch's end, and
    named (epoch 1, step 3); the epoch is never recorded as trained."""
    _, train, val = faces_small
    calls = itertools.count(1)

    def nan_at_step_3(pred, target):
        loss = F.mse_loss(pred, target)
        return loss * float("nan") if next(calls) == 3 else loss

    model = model_of("baseline")
    with pytest.raises(Diverged) as info:
        run_fit(model, torch.optim.SGD(model.parameters(), lr=0.01), train, val, max_epochs=3, batch_size=16,
                loss=nan_at_step_3)
    assert (info.value.epoch, info.value.step) == (1, 3) and math.isnan(info.value.loss)


def test_a_validation_metric_gone_non_finite_is_divergence_not_a_best_epoch_0(faces_small):
    """A net whose training loss stays finite but whose validation overflows (train 2.4e29, val inf
    was seen at lr 1) is diverged at that epoch, never "finished" with a best epoch 0."""
    _, train, val = faces_small

    class OverflowsInEval(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 3, 3, padding=1)

        def forward(self, x):
            y = self.conv(x)
            return y if self.training else y + float("inf")

    model = OverflowsInEval()
    with pytest.raises(Diverged, match="training diverged at epoch 1: val_mse=inf") as info:
        run_fit(model, torch.optim.SGD(model.parameters(), lr=0.01), train, val, max_epochs=3, batch_size=16,
                early_stopping=EarlyStopping(patience=2))
    assert info.value.epoch == 1 and info.value.step is None


def test_an_epoch_reads_the_device_once_whatever_its_length(faces_small, monkeypatch):
    """No per-step host sync: over an epoch of 4 steps with an EMA, the only read back is one
    `tolist` of the epoch's sums (torch's AveragedModel alone would read twice per step)."""
    _, train, _ = faces_small
    reads = []
    for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
        original = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name,
                            lambda self, *a, _o=original, _n=name: (reads.append(_n), _o(self, *a))[1])
    model = model_of("baseline", layers=2, batch_norm=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    from colorize.training.averaging import WeightAverage

    ema = WeightAverage(model, 0.99)
    train_epoch(model, opt, train, torch.Generator().manual_seed(0), 1, options(16), ema)
    assert reads == ["tolist"], reads
    reads.clear()
    train_epoch(model, opt, train, torch.Generator().manual_seed(0), 2, options(16, sync_every_step=True), ema)
    assert reads.count("item") == 4  # the debug switch: the eager loop's one read per step, for benchmarks


def test_callback_stop_restores_the_best_weights(faces_small):
    _, train, val = faces_small

    class Stop(StopTraining):
        pass

    class StopAt3(Callback):
        def on_epoch_end(self, epoch, metrics, state):
            if epoch == 3:
                raise Stop("enough")

    torch.manual_seed(0)
    model = model_of("baseline", layers=2, kernel_size=3, channels=4)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    result = run_fit(model, opt, train, val, max_epochs=10, batch_size=16,
                 early_stopping=EarlyStopping(patience=5), callbacks=[StopAt3()], progress=False)
    assert isinstance(result, FitResult) and result.stopped_epoch == 3 and isinstance(result.stopped_by, Stop)
    assert result.best_epoch == min(range(1, 4), key=lambda e: result.history[e - 1]["val_mse"])


def test_a_machine_that_slows_past_the_budget_stops_with_time_budget(faces_small):
    """N is fixed by epoch 1's pace; epochs that then take 5x longer overrun the budget by > 20%."""
    _, train, val = faces_small
    reads = itertools.count()
    # fit reads the clock at its start, then 3 times in epoch 1 (1 s apart) and 3 times per later epoch
    clock = lambda: (lambda i: i if i <= 3 else 3 + 5 * (i - 3))(next(reads))  # noqa: E731
    result = _budgeted(train, val, max_epochs=50, max_seconds=10, clock=clock)
    assert result.planned_epochs == 3 and isinstance(result.stopped_by, TimeBudget)
    assert result.stopped_epoch == 1 + 1  # epoch 2 ends at 23 s: past 1.2 x 10 s with an epoch to go


def test_a_budget_too_small_for_two_epochs_trains_one(faces_small):
    _, train, val = faces_small
    model = model_of("baseline")
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    result = run_fit(model, opt, train, val, max_epochs=1000, batch_size=16,
                 max_seconds=1e-9, progress=False)
    assert result.stopped_epoch == 1 and result.planned_epochs == 1 and result.stopped_by is None


@pytest.mark.parametrize("budget,first,max_epochs,expected", [
    (60, 7, 100, 8), (60, 7, 5, 5), (60, 61, 100, 1), (60, 60, 100, 1), (600, 0.0, 3, 3),
])
def test_epochs_in_budget(budget, first, max_epochs, expected):
    assert epochs_in_budget(budget, first, max_epochs) == expected


def test_hflip_mirrors_inputs_and_targets_together(faces_small):
    """Trained with mirroring, a net that copies its input sees mirrored targets too: its train
    metrics equal those without mirroring (gray vs colour error is mirror-invariant per image)."""
    _, train, _ = faces_small

    class CopyGray(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))  # untouched by lr=0

        def forward(self, x):
            return x.expand(-1, 3, -1, -1) + 0 * self.w

    model = CopyGray()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    plain = train_epoch(model, opt, train, torch.Generator().manual_seed(1), 1, options(16))
    mirrored = train_epoch(model, opt, train, torch.Generator().manual_seed(1), 1, options(16, hflip=True))
    assert mirrored["margin12_error"] == plain["margin12_error"]
    assert mirrored["mse"] == pytest.approx(plain["mse"], rel=1e-6)  # same values, summed in another order


def test_hflip_changes_training_and_resumes_exactly(faces_small):
    _, train, val = faces_small

    def run(hflip, epochs, resume=None, states=None):
        torch.manual_seed(0)
        model = model_of("baseline", layers=2, kernel_size=3, channels=4)
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        result = run_fit(model, opt, train, val, max_epochs=epochs, batch_size=16,
                     progress=False, hflip=hflip,
                     resume=resume, callbacks=[Recorder(states)] if states is not None else ())
        return [h["train_mse"] for h in result.history]

    states = []
    straight = run(True, 3, states=states)
    assert straight != run(False, 3)
    resumed = run(True, 3, resume=states[0])
    assert resumed == pytest.approx(straight, rel=1e-6)


@pytest.mark.parametrize("factory,shape", [(schedules.cosine, lambda t: (1 + math.cos(math.pi * t)) / 2),
                                           (schedules.linear, lambda t: 1 - t)])
def test_schedule_trains_the_first_epoch_at_lr_and_the_last_at_the_floor(faces_small, factory, shape):
    _, train, val = faces_small
    model = model_of("baseline")
    opt = torch.optim.SGD(model.parameters(), lr=0.02)
    # spans the run
    assert isinstance(factory(torch.optim.SGD(model.parameters(), lr=0.02), 5), schedules.EpochSchedule)
    result = run_fit(model, opt, train, val, max_epochs=5, batch_size=16,
                 progress=False, schedule=lambda o, n: factory(o, n, eta_min=0.001))
    expected = [0.001 + (0.02 - 0.001) * shape(k / 4) for k in range(5)]  # hand-computed: epochs 1..5
    assert [h["lr"] for h in result.history] == pytest.approx(expected)
    assert result.history[0]["lr"] == pytest.approx(0.02) and result.history[-1]["lr"] == pytest.approx(0.001)


def test_a_schedule_that_spans_the_run_is_not_cut_by_early_stopping(faces_small):
    """Early stopping (patience 1, huge epsilon: no epoch after the first improves) only picks the
    best epoch; the run still anneals to its last epoch."""
    _, train, val = faces_small
    model = model_of("baseline")
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    result = run_fit(model, opt, train, val, max_epochs=4, batch_size=16,
                 progress=False, schedule=schedules.cosine, early_stopping=EarlyStopping(epsilon=1e9, patience=1))
    assert result.stopped_epoch == 4 and result.best_epoch == 1 and result.history[-1]["lr"] == 0.0
    # without a schedule, the same early stopping ends the run after `patience` epochs (the study's rule)
    model = model_of("baseline")
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    result = run_fit(model, opt, train, val, max_epochs=4, batch_size=16,
                 progress=False, early_stopping=EarlyStopping(epsilon=1e9, patience=1))
    assert result.stopped_epoch == 2


def ticking_clock(step: float = 1.0):
    """A clock that advances `step` seconds each time it is read: fit's pace, whatever the machine's."""
    ticks = itertools.count()
    return lambda: next(ticks) * step


def _budgeted(train, val, *, max_epochs, max_seconds=None, resume=None, states=None, clock=None):
    torch.manual_seed(0)
    model = model_of("baseline", layers=2, kernel_size=3, channels=4)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    return run_fit(model, opt, train, val, max_epochs=max_epochs, batch_size=16,
               progress=False, schedule=schedules.cosine, max_seconds=max_seconds, resume=resume,
               callbacks=[Recorder(states)] if states is not None else (), clock=clock or ticking_clock())


def test_budget_fixes_the_epochs_keeps_them_on_resume_and_replays_without_it(faces_small):
    _, train, val = faces_small
    states = []
    # the ticking clock makes epoch 1 (fit's start to its plan) last 3 s: a 10-s budget fits N = 3
    run = _budgeted(train, val, max_epochs=50, max_seconds=10, states=states)
    n = run.planned_epochs
    assert n == 3 and run.stopped_epoch == n and run.stopped_by is None
    assert [s.budget_epochs for s in states] == [n] * n
    assert run.history[-1]["lr"] == 0.0  # annealed: the last epoch trained at the floor
    replay = _budgeted(train, val, max_epochs=n)
    assert [h["val_mse"] for h in replay.history] == [h["val_mse"] for h in run.history]
    assert [h["lr"] for h in replay.history] == [h["lr"] for h in run.history]
    # resumed after epoch 1 with a budget that would now allow far more epochs: N is kept
    resumed = _budgeted(train, val, max_epochs=50, max_seconds=1e6, resume=states[0])
    assert resumed.stopped_epoch == n
    assert [h["val_mse"] for h in resumed.history] == pytest.approx([h["val_mse"] for h in run.history], rel=1e-6)


def test_bf16_mixed_precision_trains_like_fp32(faces_small):
    """bf16 autocast keeps float32 weights and loss: the trajectory stays close to fp32's."""
    _, train, val = faces_small

    def run(precision):
        torch.manual_seed(0)
        model = model_of("unet", depth=2, channels=8, stride=2).to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(model.parameters(), lr=0.003)
        result = run_fit(model, opt, train, val, max_epochs=3, batch_size=16,
                     progress=False, precision=precision)
        assert all(p.dtype == torch.float32 for p in model.parameters())
        return result.history

    fp32, bf16 = run("fp32"), run("bf16")
    for a, b in zip(fp32, bf16):
        assert b["train_mse"] == pytest.approx(a["train_mse"], rel=0.05)
        assert b["val_margin12_accuracy"] == pytest.approx(a["val_margin12_accuracy"], abs=0.02)
    assert bf16[-1]["val_mse"] < bf16[0]["val_mse"]  # it learns


def test_callbacks_hear_the_plan_then_every_epoch_in_their_order(faces_small):
    _, train, val = faces_small
    calls = []

    class Spy(Callback):
        def __init__(self, name):
            self.name = name

        def on_plan(self, epochs, measured):
            calls.append((self.name, "plan", epochs, measured))

        def on_epoch_end(self, epoch, metrics, state):
            same = round(metrics["val_mse"], 12) == round(state.history[-1]["val_mse"], 12)
            calls.append((self.name, epoch, state.epoch, same))

    model = model_of("baseline")
    run_fit(model, torch.optim.SGD(model.parameters(), lr=0.01), train, val, max_epochs=2, batch_size=16,
            callbacks=[Spy("a"), Spy("b")])
    assert calls == [("a", "plan", 2, False), ("b", "plan", 2, False),
                     ("a", 1, 1, True), ("b", 1, 1, True), ("a", 2, 2, True), ("b", 2, 2, True)]
    calls.clear()  # a time budget: N is measured after epoch 1, and heard before that epoch's end
    model = model_of("baseline")
    run_fit(model, torch.optim.SGD(model.parameters(), lr=0.01), train, val, max_epochs=1000, batch_size=16,
            max_seconds=1e-9, callbacks=[Spy("a")])
    assert calls == [("a", "plan", 1, True), ("a", 1, 1, True)]


def test_train_loss_is_logged_beside_the_mse_whatever_the_loss(faces_small):
    from functools import partial

    from colorize.training.losses import l1, mse

    _, train, val = faces_small
    for loss in (partial(mse), partial(l1)):
        model = model_of("baseline", layers=2, channels=4)
        result = run_fit(model, torch.optim.SGD(model.parameters(), lr=0.05), train, val, max_epochs=2,
                         batch_size=16, loss=loss)
        h = result.history[-1]
        assert {"train_loss", "train_mse", "val_mse", "val_margin12_accuracy"} <= set(h)
        if loss.func is mse:
            assert h["train_loss"] == pytest.approx(h["train_mse"], rel=1e-9)
        else:
            assert h["train_loss"] != pytest.approx(h["train_mse"], rel=1e-3)  # the L1, not the MSE
            assert h["train_loss"] > h["train_mse"]  # |e| > e^2 for errors below 1


def test_ema_and_shifts_resume_exactly_and_the_ema_weights_are_kept(faces_small):
    _, train, val = faces_small

    def run(epochs, resume=None, states=None):
        torch.manual_seed(0)
        model = model_of("baseline", layers=2, channels=4, batch_norm=True)
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        result = run_fit(model, opt, train, val, max_epochs=epochs, batch_size=16, ema=0.9, shift=2,
                         callbacks=[Recorder(states)] if states is not None else (), resume=resume)
        return model, result

    states = []
    model, straight = run(3, states=states)
    assert states[0].ema is not None and "n_averaged" in states[0].ema
    _, resumed = run(3, resume=states[0])
    assert [h["val_mse"] for h in resumed.history] == pytest.approx([h["val_mse"] for h in straight.history], rel=1e-6)
    ema_best = {k.removeprefix("module."): v for k, v in states[-1].ema.items() if k.startswith("module.")}
    if straight.best_epoch == 3:  # the model now holds the EMA weights of the best epoch
        for name, tensor in model.state_dict().items():
            torch.testing.assert_close(tensor, ema_best[name])


def test_early_stopping_can_watch_the_accuracy(faces_small):
    _, train, val = faces_small
    model = model_of("baseline", layers=2, channels=4)
    stopper = EarlyStopping(epsilon=0.0, patience=2, monitor="val_margin12_accuracy", mode="max")
    result = run_fit(model, torch.optim.SGD(model.parameters(), lr=0.05), train, val, max_epochs=6,
                     batch_size=16, early_stopping=stopper)
    accuracies = [h["val_margin12_accuracy"] for h in result.history]
    assert result.best_epoch == 1 + max(range(len(accuracies)), key=lambda i: (accuracies[i], -i))
