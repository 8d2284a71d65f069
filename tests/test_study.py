"""`colorize-study` (colorize/study.py): the presets in one command, then their report; a rerun skips."""

import re

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import run_cli


def test_by_default_the_study_runs_the_reference_experiments_then_the_search(make_cfg):
    """What one `colorize-study` runs, in order (each preset composes; the e2e test below runs two,
    test_progress counts their trials, test_sweeper checks their grids)."""
    from colorize.study import OPTUNA_PRESETS, PRESETS

    assert PRESETS == ("layers", "kernel_size", "kernels", "lr", "further", "search") and OPTUNA_PRESETS == ("search",)
    for preset in PRESETS:
        assert make_cfg(f"sweep={preset}", return_hydra_config=True).hydra.sweep.dir.startswith(
            f"outputs/multirun/{preset}/")


def test_study_splits_overrides_as_hydra_does_and_keeps_sweeper_settings_to_optuna_presets():
    from colorize.study import preset_overrides

    given = ["data=faces", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_trials=3",
             "trainer.max_epochs=1"]
    task, hydra = preset_overrides("layers", given)
    assert task == ["sweep=layers", "data=faces", "trainer.max_epochs=1"]  # what the parent's tag records
    assert hydra == ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]  # the basic sweeper has no n_trials
    assert preset_overrides("search", given)[1] == ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                                                    "hydra.sweeper.n_trials=3"]


def test_study_gives_the_search_its_own_budget_replacing_the_common_keys():
    from colorize.study import preset_overrides

    given = ["data=faces", "trainer.max_epochs=20", "hydra/launcher=joblib"]
    own = ["trainer.max_epochs=6", "trainer.max_minutes=1.5", "hydra.sweeper.n_trials=12"]
    task, hydra = preset_overrides("search", given, own=own)
    assert task == ["sweep=search", "data=faces", "trainer.max_epochs=6", "trainer.max_minutes=1.5"]
    assert hydra == ["hydra/launcher=joblib", "hydra.sweeper.n_trials=12"]
    assert preset_overrides("layers", given)[0] == ["sweep=layers", "data=faces", "trainer.max_epochs=20"]


@pytest.mark.e2e
def test_study_with_a_launcher_override_finishes_and_skips_when_rerun(faces, mlflow_uri, tmp_path):
    """Options after overrides and Hydra overrides (launcher, sweeper) in any order; the parent run
    is found by its task overrides, so the study finishes and a re-run skips both presets. The
    launcher is the fused one: under the grid sweeper and under Optuna's."""
    common = [f"tracking.uri={mlflow_uri}", "tracking.experiment=study-fused"]
    args = ["data=faces", "--presets", "layers,search", f"data.root={faces}", "hydra/launcher=fused",
            "data.limit=16", "trainer.max_epochs=1", "hydra.sweeper.n_trials=2", "--name", "fused", *common]
    first = run_cli(*args, module="colorize.study", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "report: outputs/report/fused/report.md" in first.stdout
    shipped = re.search(r"^best: run ([0-9a-f]{32}) \(.*\); ship it: colorize-register \1 <name> --alias champion$",
                        first.stdout, re.MULTILINE)
    md = (tmp_path / "outputs/report/fused/report.md").read_text()
    assert shipped and f"Ship it: `colorize-register {shipped[1]} " in md  # the report's best, the same run
    assert "(sweep=layers)" in md and "(sweep=search)" in md
    client = MlflowClient(tracking_uri=mlflow_uri)
    exp = client.get_experiment_by_name("study-fused")
    runs = client.search_runs([exp.experiment_id])
    assert len([r for r in runs if "mlflow.parentRunId" in r.data.tags]) == 3 + 2  # n_trials reached search only
    second = run_cli(*args, module="colorize.study", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert (second.stderr + second.stdout).count("skipping") == 2
    assert len(client.search_runs([exp.experiment_id])) == len(runs)
