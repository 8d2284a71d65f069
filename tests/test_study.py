"""`colorize-study` (colorize/study.py): every preset in one command, then its report; a rerun skips."""

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import run_cli


@pytest.mark.e2e
def test_study_runs_every_preset_and_the_report_then_skips_when_rerun(faces, mlflow_uri, tmp_path):
    overrides = ["data=faces", f"data.root={faces}", "data.limit=24", "trainer.max_epochs=1",
                 f"tracking.uri={mlflow_uri}", "tracking.experiment=study"]
    first = run_cli(*overrides, "--search-trials", "2", "--name", "ci", module="colorize.study", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "report: outputs/report/ci/report.md" in first.stdout
    md = (tmp_path / "outputs/report/ci/report.md").read_text()
    for preset in ("layers", "kernel_size", "kernels", "lr", "further", "search"):
        assert f"(sweep={preset})" in md
    client = MlflowClient(tracking_uri=mlflow_uri)
    exp = client.get_experiment_by_name("study")
    runs = client.search_runs([exp.experiment_id])
    assert len([r for r in runs if "mlflow.parentRunId" in r.data.tags]) == 3 + 4 + 6 + 10 + 8 + 2
    second = run_cli(*overrides, "--search-trials", "2", "--name", "ci", module="colorize.study", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert (second.stderr + second.stdout).count("skipping") == 6
    assert len(client.search_runs([exp.experiment_id])) == len(runs)


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
    client = MlflowClient(tracking_uri=mlflow_uri)
    exp = client.get_experiment_by_name("study-fused")
    runs = client.search_runs([exp.experiment_id])
    assert len([r for r in runs if "mlflow.parentRunId" in r.data.tags]) == 3 + 2  # n_trials reached search only
    second = run_cli(*args, module="colorize.study", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert (second.stderr + second.stdout).count("skipping") == 2
    assert len(client.search_runs([exp.experiment_id])) == len(runs)
