"""Fused trials (hydra/launcher=fused): a group trains as one stacked model and each member computes
what it would alone; the launcher groups only what can fuse, tracks each trial as its own run, and
a SIGKILLed fused sweep resumes without duplicates."""

import copy
import signal

import pytest
import torch
from mlflow.tracking import MlflowClient
from torch.utils._python_dispatch import TorchDispatchMode

from colorize.config import model_of
from colorize.data.faces import load_faces
from colorize.launch.fusing import FUSIBLE, groups
from colorize.training.early_stopping import EarlyStopping
from colorize.training.fused import StackedForward
from colorize.training.loop import (DeviceImages, Diverged, EpochSums, FitOptions, FitProgress, Member, fit,
                                    fit_group, group_step)
from tests.conftest import run_cli, run_until


class Calls(TorchDispatchMode):
    """Counts the aten operators that actually run (below vmap: what the device executes)."""

    def __init__(self):
        super().__init__()
        self.counts = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        self.counts[name] = self.counts.get(name, 0) + 1
        return func(*args, **(kwargs or {}))


def net(seed, **values):
    torch.manual_seed(seed)
    values = {"layers": 2, "kernel_size": 5, "channels": 8, **values}
    return model_of("baseline", **values).to(memory_format=torch.channels_last)


@pytest.fixture(scope="module")
def small(faces):
    splits = load_faces(str(faces), limit=48)
    cpu = torch.device("cpu")
    return DeviceImages.from_set(splits.train, cpu), DeviceImages.from_set(splits.val, cpu)


def test_one_forward_and_one_backward_serve_the_whole_group(small):
    train, _ = small
    models = [net(seed) for seed in range(4)]
    x = torch.stack([train.gray[16 * g : 16 * g + 16] for g in range(3)] + [train.gray[:16]])
    with Calls() as calls:
        fused = StackedForward(models)(x)
    assert calls.counts["convolution"] == 2  # 2 layers, 4 members: one grouped convolution per layer
    for g, model in enumerate(models):
        torch.testing.assert_close(fused[g], model(x[g]), rtol=1e-5, atol=1e-6)

    # a whole training step: one forward and one backward convolution per layer, for all 4 members,
    # and each member's own optimizer (its own lr) moves its weights as a step alone would
    alone = [copy.deepcopy(m) for m in models]
    runs = [FitProgress(m, torch.optim.SGD(m.parameters(), lr=0.1 * (g + 1)), torch.Generator(), FitOptions(1, 16),
                        (), 0.0, None) for g, m in enumerate(models)]
    batch = [(x[g], train.rgb[:16], train.rgb_bytes[:16]) for g in range(4)]
    sums = [EpochSums.zeros(torch.device("cpu")) for _ in runs]
    with Calls() as calls:
        group_step(runs, batch, StackedForward(models), sums, step=1)
    assert calls.counts["convolution"] == 2 and calls.counts["convolution_backward"] == 2
    for g, model in enumerate(alone):
        opt = torch.optim.SGD(model.parameters(), lr=0.1 * (g + 1))
        loss = torch.nn.functional.mse_loss(model(x[g]), batch[g][1])
        loss.backward()
        opt.step()
        assert float(sums[g].loss) / batch[g][1].numel() == pytest.approx(loss.item(), rel=1e-5)
        for p, q in zip(models[g].parameters(), model.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6)  # float rounding of grouped convs


def test_a_batch_norm_group_keeps_each_members_running_statistics(small):
    train, _ = small
    models = [net(seed, batch_norm=True) for seed in (0, 1)]
    alone = [copy.deepcopy(m) for m in models]
    x = torch.stack([train.gray[:16], train.gray[16:32]])
    StackedForward(models)(x)
    for g, model in enumerate(alone):
        model(x[g])
        torch.testing.assert_close(models[g][1].running_mean, model[1].running_mean)
        assert int(models[g][1].num_batches_tracked) == 1
    assert not torch.equal(models[0][1].running_mean, models[1][1].running_mean)


def member(seed, lr, patience=1, epochs=6, epsilon=5e-6, **model):
    m = net(seed, **model)
    options = FitOptions(max_epochs=epochs, batch_size=16, progress=False,
                         early_stopping=EarlyStopping(epsilon, patience) if patience else None)
    return Member(m, torch.optim.SGD(m.parameters(), lr=lr, momentum=0.5), torch.Generator().manual_seed(seed), options)


def test_a_fused_group_computes_what_each_member_computes_alone(small):
    """Seeds, lrs, early stopping and epochs differ per member; one member diverges at lr 50 and
    leaves the group at the end of that epoch, as it would alone; the others stop at their own epochs."""
    train, val = small
    settings = [(0, 0.1, 1, 8, 0.002), (1, 0.1, 1, 8, 0.002), (2, 50.0, 1, 8), (3, 0.3, 0, 6), (4, 0.05, 2, 8)]
    # (seed, lr, patience (0: none), epochs, epsilon)
    fused = fit_group([member(*s) for s in settings], train, val)
    for s, together in zip(settings, fused):
        m = member(*s)
        try:
            alone = fit(m.model, m.optimizer, train, val, m.generator, m.options)
        except Diverged as diverged:
            assert isinstance(together, Diverged) and (together.epoch, together.step) == (diverged.epoch, diverged.step)
            continue
        assert (together.best_epoch, together.stopped_epoch) == (alone.best_epoch, alone.stopped_epoch)
        for a, b in zip(together.history, alone.history):
            for key in ("train_mse", "val_mse", "val_margin12_accuracy"):
                assert a[key] == pytest.approx(b[key], rel=1e-5), (s, key)
    assert isinstance(fused[2], Diverged)
    assert len({r.stopped_epoch for r in fused if not isinstance(r, Diverged)}) > 1  # each stopped at its own epoch


def test_members_of_different_shapes_are_refused(small):
    train, val = small
    with pytest.raises(ValueError, match="one architecture"):
        fit_group([member(0, 0.1), member(1, 0.1, channels=4)], train, val)


def test_the_launcher_fuses_only_jobs_that_differ_in_fusible_keys(make_cfg):
    jobs = [make_cfg(*o) for o in (
        ["trainer.seed=0", "optimizer.lr=0.1"], ["trainer.seed=1", "optimizer=adam"], ["model.layers=3"],
        ["trainer.seed=2", "trainer.early_stopping.patience=3"], ["model.layers=3", "optimizer.lr=1"],
        ["trainer.batch_size=8"], ["data.limit=10"], ["loss=l1"],
    )]
    assert groups(jobs, max_size=0) == [[0, 1, 3], [2, 4], [5], [6], [7]]
    assert groups(jobs, max_size=2) == [[0, 1], [2, 4], [3], [5], [6], [7]]
    assert "trainer.seed" in FUSIBLE and not any(k.startswith(("model", "data", "loss")) for k in FUSIBLE)


def sweep_args(faces, uri, experiment, folder, *extra):
    return ["-m", "data=faces", f"data.root={faces}", "data.limit=100", "trainer.max_epochs=6",
            "model.layers=2", "model.kernel_size=5", "model.channels=8", "trainer.early_stopping.patience=1",
            "trainer.seed=0,1", "optimizer.lr=0.1,1", f"tracking.uri={uri}", f"tracking.experiment={experiment}",
            f"hydra.sweep.dir={folder}", *extra]


def trials(client, experiment):
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {(r.data.params["trainer.seed"], r.data.params["optimizer.lr"]): r
                for r in runs if "mlflow.parentRunId" in r.data.tags}
    return parents, children, len(runs)


def history(client, run, key):
    return [(m.step, m.value) for m in sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)]


@pytest.mark.e2e
def test_a_sigkilled_fused_sweep_resumes_and_logs_what_the_basic_launcher_logs(faces, mlflow_uri, tmp_path):
    basic = run_cli(*sweep_args(faces, mlflow_uri, "fused_basic", tmp_path / "basic"))
    assert basic.returncode == 0, basic.stderr[-3000:]
    args = sweep_args(faces, mlflow_uri, "fused", tmp_path / "fused", "hydra/launcher=fused")
    code, out = run_until(args, ["fused launcher: 4 jobs in 1 groups of 4", "epoch   3/6"], signal.SIGKILL)
    assert code == -signal.SIGKILL
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    client = MlflowClient(tracking_uri=mlflow_uri)
    _, expected, _ = trials(client, "fused_basic")
    parents, children, total = trials(client, "fused")
    assert len(parents) == 1 and len(children) == 4 and total == 5  # resumed in place: no run twice
    assert {c.info.status for c in [*parents, *children.values()]} <= {"FINISHED", "FAILED"}
    assert len({c.data.tags["fused_group"] for c in children.values()}) == 1
    assert {c.data.tags["fused_size"] for c in children.values()} == {"4"}
    for key, run in children.items():
        alone = expected[key]
        assert run.info.status == alone.info.status, key  # an lr-1 trial diverges exactly when alone
        assert run.data.tags.get("diverged_epoch") == alone.data.tags.get("diverged_epoch"), key
        for metric in ("train_mse", "val_mse", "val_margin12_accuracy"):
            got, want = history(client, run, metric), history(client, alone, metric)
            assert [s for s, _ in got] == [s for s, _ in want] == list(range(1, len(want) + 1)), (key, metric)
            if key[1] == "0.1":  # lr 1 is chaotic: status and epochs only
                assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=1e-5), (key, metric)
