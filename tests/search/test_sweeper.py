"""Study presets, Optuna search with pruning, divergence and MLflow parent runs -- all real."""


import optuna
import pytest
import torch
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf
from optuna.trial import TrialState

from pathlib import Path
from types import SimpleNamespace

from colorize.config import to_object
from colorize.cores import available_cores
from colorize.training.precision import bf16_is_native, probe
from colorize.search.pruning import Pruned, TrialReporter
from colorize.search.storage import PruningAwareStorage, open_storage
from colorize.training.callback import CallbackContext
from tests.conftest import run_cli


def jobs(make_cfg, preset: str) -> list:
    """The job configs Hydra's basic sweeper launches for a preset (real override parsing)."""
    from hydra import compose, initialize_config_module
    from colorize.paths import CONFIG_MODULE

    with initialize_config_module(CONFIG_MODULE):
        hydra_cfg = compose("train", overrides=[f"sweep={preset}"], return_hydra_config=True)
    params = hydra_cfg.hydra.sweeper.params
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    batches = BasicSweeper.split_arguments(parsed, None)
    return [to_object(make_cfg(f"sweep={preset}", *job)) for batch in batches for job in batch]


def grid(confs, *keys):
    return sorted(tuple(OmegaConf.select(OmegaConf.structured(c), k) for k in keys) for c in confs)


def test_layers_preset(make_cfg):
    confs = jobs(make_cfg, "layers")
    assert grid(confs, "model.layers") == [(1,), (2,), (4,)]
    assert {(c.optimizer.lr, c.trainer.batch_size, c.model.channels, c.model.kernel_size) for c in confs} == {
        (0.001, 16, 8, 3)
    }


def test_kernel_size_preset(make_cfg):
    confs = jobs(make_cfg, "kernel_size")
    assert grid(confs, "model.layers", "model.kernel_size") == [(2, 3), (2, 5), (4, 3), (4, 5)]
    assert {(c.optimizer.lr, c.trainer.batch_size, c.model.channels) for c in confs} == {(0.001, 16, 8)}


def test_kernels_preset(make_cfg):
    confs = jobs(make_cfg, "kernels")
    assert grid(confs, "model.layers", "model.channels") == [(n, c) for n in (2, 4) for c in (2, 4, 8)]
    assert {(c.optimizer.lr, c.trainer.batch_size, c.model.kernel_size) for c in confs} == {(0.001, 16, 5)}


def test_lr_preset(make_cfg):
    confs = jobs(make_cfg, "lr")
    assert len(confs) == 10
    assert grid(confs, "model.layers", "optimizer.lr") == sorted(
        (n, lr) for n in (2, 4) for lr in (1.0, 0.1, 0.01, 0.001, 0.0001)
    )
    assert {(c.trainer.batch_size, c.model.channels, c.model.kernel_size) for c in confs} == {(16, 8, 5)}


def test_further_preset(make_cfg):
    confs = jobs(make_cfg, "further")
    assert len(confs) == 8
    variants = grid(confs, "model.layers", "model.batch_norm", "model.tanh", "model.channels")
    assert variants == sorted(
        (n, bn, tanh, ch) for n in (2, 4)
        for bn, tanh, ch in [(False, False, 8), (True, False, 8), (False, True, 8), (False, False, 16)]
    )
    assert {(c.optimizer.lr, c.trainer.batch_size, c.model.kernel_size) for c in confs} == {(0.1, 16, 5)}


def test_search_preset_is_a_seeded_optuna_tpe_study(make_cfg):
    from hydra import compose, initialize_config_module
    from colorize.paths import CONFIG_MODULE

    with initialize_config_module(CONFIG_MODULE):
        cfg = compose("train", overrides=["sweep=search", "pruner=median"], return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "colorize.search.sweeper.ColorizeOptunaSweeper"
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler" and sweeper.sampler.seed == 0
    assert sweeper.direction == "minimize" and sweeper.storage.startswith("sqlite:///outputs/")
    assert set(sweeper.params) == {"optimizer", "optimizer.lr", "model.channels", "model.batch_norm"}
    assert "log" in sweeper.params["optimizer.lr"]
    assert sweeper.custom_search_space == "colorize.search.space.architecture"
    assert cfg.pruner._target_ == "optuna.pruners.MedianPruner"


def test_conditional_space_suggests_each_family_its_own_keys(tmp_path):
    from colorize.search.space import architecture

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    families = set()
    for _ in range(12):
        trial = study.ask()
        architecture(None, trial)
        keys = set(trial.params)
        families.add(trial.params["model"])
        if trial.params["model"] == "baseline":
            assert keys == {"model", "model.layers", "model.kernel_size", "model.tanh"}
        else:
            assert keys == {"model", "model.depth"}
        study.tell(trial, 0.5)
    assert families == {"baseline", "unet"}


def reporter(url, study, number, pruner, objective="err"):
    """The `callbacks` group's `optuna` entry, set up as a trial's job sets it up."""
    cfg = OmegaConf.create({"optuna_trial": number, "pruner": pruner})
    callback = TrialReporter(objective)
    callback.setup(CallbackContext(run=None, model=None, cfg=cfg, output_dir=Path("."),
                                   sweeper={"storage": url, "study_name": study}))
    return callback


def test_reporter_prunes_and_storage_records_pruned(tmp_path):
    """The job-side reporter and the sweeper-side storage on a real sqlite Optuna study."""
    url = f"sqlite:///{tmp_path}/study.db"
    assert isinstance(open_storage(url), PruningAwareStorage)
    study = optuna.create_study(study_name="s", storage=open_storage(url), direction="minimize")
    trial = study.ask()
    reporter_ = reporter(url, "s", trial.number, {"_target_": "optuna.pruners.ThresholdPruner", "upper": 0.5})
    unbudgeted = SimpleNamespace(budget_epochs=None)  # what fit passes: a TrainState
    reporter_.on_epoch_end(1, {"err": 0.4}, unbudgeted)  # below the threshold: goes on
    with pytest.raises(Pruned):
        reporter_.on_epoch_end(2, {"err": 0.7}, unbudgeted)
    reporter_.teardown()
    study.tell(trial, 0.4)  # what Hydra's sweeper tells with the job's return value
    frozen = study.trials[0]
    assert frozen.state == TrialState.PRUNED
    assert frozen.value == pytest.approx(0.7) and frozen.intermediate_values == {1: 0.4, 2: 0.7}
    other = study.ask()
    study.tell(other, 0.3)
    assert study.trials[1].state == TrialState.COMPLETE


def mlflow_children(uri, experiment):
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, parents, children


@pytest.mark.e2e
def test_diverging_trial_is_recorded_and_the_sweep_goes_on(faces, mlflow_uri, tmp_path):
    proc = run_cli(
        "-m", "data=faces", f"data.root={faces}", "data.limit=64", "trainer.max_epochs=2",
        "model.layers=2", "model.kernel_size=5", "optimizer.lr=0.1,50,0.01",
        f"tracking.uri={mlflow_uri}", "tracking.experiment=divergence", f"hydra.sweep.dir={tmp_path}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    client, parents, children = mlflow_children(mlflow_uri, "divergence")
    assert len(parents) == 1 and len(children) == 3
    parent = parents[0]
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    by_lr = {c.data.params["optimizer.lr"]: c for c in children}
    assert by_lr["50.0"].info.status == "FAILED" and by_lr["50.0"].data.tags["diverged"] == "true"
    assert by_lr["0.1"].info.status == "FINISHED" and by_lr["0.01"].info.status == "FINISHED"
    # the parent run: summary table artifact, best value and the best trial's run id
    assert parent.info.status == "FINISHED" and parent.info.run_name == "multirun"
    assert parent.data.tags["sweep_dir"] == str(tmp_path.resolve())
    assert "optimizer.lr=0.1,50,0.01" in parent.data.tags["overrides"]
    best = min((by_lr["0.1"], by_lr["0.01"]), key=lambda r: r.data.metrics["best_val_margin12_error"])
    assert parent.data.tags["best_run_id"] == best.info.run_id
    assert parent.data.metrics["best_val_margin12_error"] == best.data.metrics["best_val_margin12_error"]
    assert parent.data.metrics["trials"] == 3 and parent.data.metrics["failed_trials"] == 1
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {"summary.csv", "summary.md"}
    summary = (tmp_path / "summary.csv").read_text().splitlines()
    assert summary[0].split(",")[:2] == ["run", "optimizer.lr"] and len(summary) == 4
    assert any(line.endswith(f"diverged,{by_lr['50.0'].info.run_id}") for line in summary)


@pytest.mark.e2e
def test_search_with_pruning_in_parallel_resumes_and_adds_trials(faces, mlflow_uri, tmp_path):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    args = [
        "sweep=search", "pruner=median", "pruner.n_startup_trials=2", "hydra.sweeper.n_trials=6",
        "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "data=faces", f"data.root={faces}",
        "data.limit=32", "trainer.max_epochs=3", f"hydra.sweeper.storage={storage}",
        f"tracking.uri={mlflow_uri}", "tracking.experiment=search",
    ]
    # without the xdist worker's OMP_NUM_THREADS: each job's thread count is then its share of the cores
    first = run_cli("-m", *args, f"hydra.sweep.dir={tmp_path}/first", drop=["OMP_NUM_THREADS"])
    assert first.returncode == 0, first.stderr[-3000:]
    study = optuna.load_study(study_name="colorize-search", storage=storage)
    states = [t.state for t in study.trials]
    assert len(states) == 6 and TrialState.PRUNED in states and TrialState.RUNNING not in states
    _, parents, children = mlflow_children(mlflow_uri, "search")
    assert len(parents) == 1 and parents[0].info.run_name == "search" and len(children) == 6
    pruned = [c for c in children if c.data.tags.get("pruned") == "true"]
    assert len(pruned) == states.count(TrialState.PRUNED)
    cores = available_cores()  # each job's share of the cores: 2 / 2 jobs = 1 on a 2-core machine
    assert {c.data.tags["num_threads"] for c in children} == {str(max(1, cores // min(cores, 2)))}
    assert {c.data.params["optuna_trial"] for c in children} == {str(n) for n in range(6)}

    second = run_cli("-m", *args, "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={tmp_path}/second")
    assert second.returncode == 0, second.stderr[-3000:]
    study = optuna.load_study(study_name="colorize-search", storage=storage)
    assert [t.number for t in study.trials] == list(range(8))
    configs = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(configs)) == 8  # resumed trials are new configurations, not a replay


@pytest.mark.e2e
def test_search_unet_preset_searches_the_unet_family_with_pruning(faces, mlflow_uri, tmp_path):
    """The preset that chose experiment=best: a real (tiny) pruned Optuna study over U-Net trials."""
    storage = f"sqlite:///{tmp_path}/optuna.db"
    proc = run_cli(
        "-m", "sweep=search_unet", "hydra.sweeper.n_trials=4", "pruner.n_startup_trials=1",
        "data=faces", f"data.root={faces}", "data.limit=32", "trainer.max_epochs=2", "model.depth=1",
        f"hydra.sweeper.storage={storage}", f"tracking.uri={mlflow_uri}", "tracking.experiment=search_unet",
        f"hydra.sweep.dir={tmp_path}/sweep",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = optuna.load_study(study_name="colorize-search-unet", storage=storage)
    assert len(study.trials) == 4 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)
    assert {"model.channels", "optimizer.lr", "trainer.batch_size"} == set(study.trials[0].params)
    _, parents, children = mlflow_children(mlflow_uri, "search_unet")
    assert len(parents) == 1 and len(children) == 4
    native_precision = "bf16" if bf16_is_native(probe(torch.device("cpu"))) else "fp32"
    for child in children:
        p = child.data.params
        assert child.data.tags["model"].startswith("unet d1 ") and p["model.stride"] == "2"
        assert (p["trainer.precision"], p["trainer.hflip"], p["scheduler.eta_min"]) == ("auto", "True", "0.0")
        assert child.data.tags["precision"] == native_precision


@pytest.mark.e2e
def test_a_preset_implies_multirun(faces, mlflow_uri, tmp_path):
    """`sweep=layers` without -m: three trials under one parent run."""
    proc = run_cli("sweep=layers", "data=faces", f"data.root={faces}", "data.limit=8", "trainer.max_epochs=1",
                   f"tracking.uri={mlflow_uri}", "tracking.experiment=implied-m", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, parents, children = mlflow_children(mlflow_uri, "implied-m")
    assert len(parents) == 1 and len(children) == 3


def test_a_time_budgeted_trial_reports_at_quarters_of_its_budget(tmp_path):
    """Trials whose budget fits different numbers of epochs are compared at the same fractions of it."""
    url = f"sqlite:///{tmp_path}/study.db"
    study = optuna.create_study(study_name="q", storage=open_storage(url), direction="minimize")
    trial = study.ask()
    reporter_ = reporter(url, "q", trial.number, {"_target_": "optuna.pruners.NopPruner"})
    reporter_.on_plan(6, measured=True)  # 6 epochs fit the budget
    for epoch in range(1, 7):
        reporter_.on_epoch_end(epoch, {"err": 1.0 / epoch}, SimpleNamespace(budget_epochs=6))
    reporter_.teardown()
    # quarters reached after epochs 1 (4*1//6 = 0: none), 2 (1), 3 (2), 5 (3), 6 (4)
    assert study.trials[0].intermediate_values == {1: 0.5, 2: pytest.approx(1 / 3), 3: 0.2, 4: pytest.approx(1 / 6)}
