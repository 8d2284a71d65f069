"""The whole step as CUDA graphs (colorize/training/step_graphs.py): its logic on the CPU, where the
same body runs eagerly through the same static tensors, against the eager epoch, bit for bit; the
capture itself in tests/training/test_graphs.py, where there is a GPU."""

from types import SimpleNamespace

import pytest
import torch

from colorize.config import model_of
from colorize.training.averaging import WeightAverage
from colorize.training.device_images import DeviceImages
from colorize.training.epoch import Diverged, epoch_metrics, train_epoch, train_group_epoch
from colorize.training.options import FitOptions
from colorize.training.step_graphs import StepGraphs, _restore, _snapshot, capture_steps, whole_step

CPU = torch.device("cpu")
OPTIONS = FitOptions(max_epochs=2, batch_size=16, progress=False)


@pytest.fixture(scope="module")
def train(faces):
    from colorize.data.faces import load_faces

    return DeviceImages.from_set(load_faces(str(faces), limit=100).train, CPU)  # 100 = 6 x 16 + 4: two sizes


def run(seed: int, lr: float = 0.05, momentum: float = 0.9, batch_norm: bool = True, options=OPTIONS):
    torch.manual_seed(seed)
    model = model_of("baseline", layers=2, channels=8, kernel_size=5, batch_norm=batch_norm)
    model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=1e-4)
    return SimpleNamespace(model=model, optimizer=optimizer, generator=torch.Generator().manual_seed(seed),
                           options=options, ema=None, epoch=1)


def same_state(a, b) -> bool:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_runs_step_through_the_static_tensors_trains_as_the_eager_epoch(train):
    """Two epochs, SGD with momentum and weight decay, BatchNorm: the same weights, statistics and
    metrics, bit for bit (the same ops in the same order; 100 faces: a tail batch of 4)."""
    eager, static = run(0), run(0)
    steps = StepGraphs([static], train, capture=False)
    assert sorted(steps.graphs) == [4, 16]
    for epoch in (1, 2):
        eager.epoch = static.epoch = epoch
        expected = train_epoch(eager.model, eager.optimizer, train, eager.generator, epoch, OPTIONS)
        assert steps.train_epoch() == [expected]
        assert same_state(eager, static)
    assert int(steps.step) == 7  # the step counter, on the device: 6 full batches and the tail


def test_a_fused_groups_step_through_the_static_tensors_trains_as_the_eager_group(train):
    eager, static = [run(s) for s in range(3)], [run(s) for s in range(3)]
    steps = StepGraphs(static, train, capture=False)
    for epoch in (1, 2):
        for r in eager + static:
            r.epoch = epoch
        assert steps.train_epoch() == train_group_epoch(eager, train)
        assert all(same_state(a, b) for a, b in zip(eager, static))


def test_the_warm_up_before_a_capture_is_undone_so_training_is_unchanged(train):
    """What `StepGraphs._captured` does around the capture, without the capture: the warm-up (moving
    weights, BatchNorm's statistics, and creating SGD's momentum buffers), then the snapshot put
    back, with the new buffers zeroed: the first real step is then SGD's first step (momentum x 0 +
    gradient)."""
    eager, static = run(0), run(0)
    steps = StepGraphs([static], train, capture=False)
    saved = _snapshot([static])
    steps._warm_up(steps.graphs[16][0])
    assert not same_state(eager, static) and static.optimizer.state  # the warm-up moved things
    _restore([static], saved)
    assert same_state(eager, static)
    expected = train_epoch(eager.model, eager.optimizer, train, eager.generator, 1, OPTIONS)
    assert steps.train_epoch() == [expected] and same_state(eager, static)


def test_a_diverging_member_is_named_at_its_first_bad_step_as_in_the_eager_group(train):
    lrs = (0.05, 1e9, 0.05)  # the middle one overflows
    eager = [run(s, lr=lr, momentum=0.0, batch_norm=False) for s, lr in enumerate(lrs)]
    static = [run(s, lr=lr, momentum=0.0, batch_norm=False) for s, lr in enumerate(lrs)]
    expected = train_group_epoch(eager, train)
    got = StepGraphs(static, train, capture=False).train_epoch()
    assert isinstance(got[1], Diverged) and isinstance(expected[1], Diverged)
    assert (got[1].step, str(got[1])) == (expected[1].step, str(expected[1]))
    assert got[0] == expected[0] and got[2] == expected[2]


def test_an_lr_moved_since_the_capture_captures_again(train):
    """SGD's lr is a number in a captured step: a schedule that moved it makes the graphs anew."""
    eager, static = run(0), run(0)
    steps = StepGraphs([static], train, capture=False)
    steps.train_epoch()
    train_epoch(eager.model, eager.optimizer, train, eager.generator, 1, OPTIONS)
    before = steps.graphs[16][0]
    for r in (eager, static):
        r.optimizer.param_groups[0]["lr"] = 0.01
        r.epoch = 2
    expected = train_epoch(eager.model, eager.optimizer, train, eager.generator, 2, OPTIONS)
    assert steps.train_epoch() == [expected] and steps.lrs == [0.01]
    assert steps.graphs[16][0] is not before and same_state(eager, static)


def test_the_metrics_read_back_are_the_eager_epochs(train):
    eager, static = run(1), run(1)
    reads = StepGraphs([static], train, capture=False).epoch()
    expected = train_epoch(eager.model, eager.optimizer, train, eager.generator, 1, OPTIONS)
    assert epoch_metrics(reads[0], 1, train) == expected


def test_only_plain_sgd_without_ema_augmentation_or_read_backs_is_captured_whole():
    base = run(0)
    assert whole_step([base])
    adam = SimpleNamespace(**{**vars(base), "optimizer": torch.optim.Adam(base.model.parameters())})
    damped = SimpleNamespace(**{**vars(base), "optimizer": torch.optim.SGD(base.model.parameters(), lr=0.1,
                                                                            momentum=0.9, dampening=0.5)})
    ema = SimpleNamespace(**{**vars(base), "ema": WeightAverage(base.model, 0.9)})
    for options in (FitOptions(1, 16, hflip=True), FitOptions(1, 16, shift=2), FitOptions(1, 16, sync_every_step=True)):
        assert not whole_step([SimpleNamespace(**{**vars(base), "options": options})])
    assert not any(whole_step([r]) for r in (adam, damped, ema))
    assert not whole_step([base, adam])  # a group: every member must qualify


@pytest.mark.parametrize("required", [False, True])
def test_a_capture_that_fails_after_its_warm_up_leaves_the_run_as_it_was(required, train, monkeypatch, caplog):
    """The capture itself made to fail (CUDA's recording is the one thing a CPU cannot do), after the
    warm-up moved the weights: they are put back; `auto` trains on less captured (None: the loop then
    tries the forward graph), `on` is one clear error."""
    from colorize.errors import ColorizeError

    def refuse(self, idx):
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(StepGraphs, "_record", refuse)
    eager, static = run(0), run(0)
    if required:
        with pytest.raises(ColorizeError, match="trainer.cuda_graphs=on: the step could not be captured: operation"):
            capture_steps([static], train, required=True)
    else:
        assert capture_steps([static], train, required=False) is None
        assert "CUDA graph capture of the whole step failed (operation not permitted" in caplog.text
    assert same_state(eager, static)
    expected = train_epoch(eager.model, eager.optimizer, train, eager.generator, 1, OPTIONS)
    assert StepGraphs([static], train, capture=False).train_epoch() == [expected] and same_state(eager, static)
