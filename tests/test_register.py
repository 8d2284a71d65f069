"""colorize-register: a real sweep's best trial shipped through MLflow's Model Registry, predicted from
its models:/ URI, and the runs it refuses, each in one line."""

import re

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from colorize import names
from colorize.errors import ColorizeError
from colorize.predict import main as predict
from colorize.register import main as register
from tests.conftest import run_cli

EXPERIMENT = "register"
pytestmark = pytest.mark.xdist_group("register")  # one worker: the module's sweep is trained once


@pytest.fixture(scope="module")
def sweep(faces, mlflow_uri, tmp_path_factory):
    """A real 3-trial sweep on 32 faces: two trials finish, lr 1e6 diverges."""
    out = tmp_path_factory.mktemp("sweep")
    proc = run_cli("-m", "data=faces", f"data.root={faces}", "data.limit=32", "trainer.max_epochs=1", "model.layers=2",
                   "optimizer.lr=0.1,0.01,1e6", f"tracking.uri={mlflow_uri}", f"tracking.experiment={EXPERIMENT}",
                   f"hydra.sweep.dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(tracking_uri=mlflow_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
    runs = client.search_runs([experiment])
    parent = next(r for r in runs if names.PARENT_TAG not in r.data.tags)
    trials = [r for r in runs if r.data.tags.get(names.PARENT_TAG) == parent.info.run_id]
    assert len(trials) == 3
    return client, parent, trials


def estimations(tmp_path, faces, mlflow_uri, model: str) -> np.ndarray:
    out = tmp_path / model.replace("/", "_").replace(":", "_").replace("@", "_")
    assert predict([model, str(faces / "val" / "images"), "--limit", "6", "--out", str(out), "--uri", mlflow_uri]) == 0
    return np.load(out / "estimations.npy")


@pytest.mark.e2e
def test_a_sweeps_best_trial_is_registered_and_predicts_as_its_run(sweep, faces, mlflow_uri, tmp_path):
    client, parent, trials = sweep
    proc = run_cli(parent.info.run_id, "faces_sweep", "--alias", "champion", "--uri", mlflow_uri,
                   module="colorize.register")
    assert proc.returncode == 0, proc.stderr[-3000:]
    finished = [t for t in trials if t.info.status == "FINISHED"]
    best = min(finished, key=lambda t: t.data.metrics[names.OBJECTIVE])
    assert best.info.run_id == parent.data.tags["best_run_id"]  # the sweep summary's pick, by the same rule
    assert f"registered run {best.info.run_id}" in proc.stdout and "as models:/faces_sweep/1" in proc.stdout
    assert "predict with: colorize-predict models:/faces_sweep@champion IMAGES" in proc.stdout
    assert "#/models/faces_sweep/versions/1" in proc.stdout
    version = client.get_model_version_by_alias("faces_sweep", "champion")
    assert version.run_id == best.info.run_id and version.source == f"runs:/{best.info.run_id}/best.pt"
    accuracy = best.data.metrics[names.BEST_VAL_ACCURACY]
    assert float(version.tags[names.BEST_VAL_ACCURACY]) == pytest.approx(accuracy)
    assert version.tags[names.BEST_EPOCH] == "1" and version.tags["model"] == "2-conv k3 c8"
    by_run = estimations(tmp_path, faces, mlflow_uri, best.info.run_id)
    for uri in ("models:/faces_sweep@champion", "models:/faces_sweep/1", "models:/faces_sweep/latest"):
        assert np.array_equal(estimations(tmp_path, faces, mlflow_uri, uri), by_run), uri
    missing = run_cli("models:/faces_sweep@nobody", str(faces / "val" / "images"), "--uri", mlflow_uri,
                      module="colorize.predict")
    assert missing.returncode == 1 and missing.stderr.strip().splitlines()[-1] == (
        "colorize: error: registered model 'faces_sweep' has no alias 'nobody' (its aliases: champion -> 1)")


@pytest.mark.e2e
def test_a_sweeps_parent_run_predicts_as_its_best_trial_and_says_which(sweep, faces, mlflow_uri, tmp_path, capsys):
    _, parent, _ = sweep
    best = parent.data.tags["best_run_id"]  # the sweep summary's pick
    by_parent = estimations(tmp_path, faces, mlflow_uri, parent.info.run_id)
    assert f"model {parent.info.run_id}: the best of the 3 trials of sweep {parent.info.run_id} (multirun), " \
           f"run {best}" in capsys.readouterr().out
    assert np.array_equal(by_parent, estimations(tmp_path, faces, mlflow_uri, best))
    assert f"model {best}:" not in capsys.readouterr().out  # a trial is itself


@pytest.mark.e2e
def test_a_new_champion_moves_the_alias_and_the_old_version_stays(sweep, mlflow_uri, capsys):
    _, parent, trials = sweep
    finished = sorted((t for t in trials if t.info.status == "FINISHED"), key=lambda t: t.data.metrics[names.OBJECTIVE])
    common = ["--uri", mlflow_uri]
    assert register([finished[0].info.run_id, "faces_moves", "--alias", "champion", *common]) == 0
    assert register([f"runs:/{finished[1].info.run_id}", "faces_moves", "--alias", "champion", *common]) == 0
    assert "alias champion -> version 2 (was version 1)" in capsys.readouterr().out
    assert register([parent.info.run_id, "faces_moves", "--alias", "champion", *common]) == 0
    out = capsys.readouterr().out  # the sweep's best is finished[0]: its version 1 again, not a third
    assert "was already registered: run" in out and "alias champion -> version 1 (was version 2)" in out
    versions = MlflowClient(tracking_uri=mlflow_uri).search_model_versions("name = 'faces_moves'")
    assert sorted(int(v.version) for v in versions) == [1, 2]


@pytest.mark.e2e
def test_a_diverged_trial_an_unknown_run_and_a_bad_alias_are_one_line_and_register_nothing(sweep, mlflow_uri):
    _, _, trials = sweep
    diverged = next(t for t in trials if t.info.status == "FAILED")
    for argv, line in [
        ([diverged.info.run_id, "faces_bad"], f"run {diverged.info.run_id} is diverged: only a finished (or pruned)"),
        (["0" * 32, "faces_bad"], f"run '{'0' * 32}' does not exist in the MLflow store"),
        ([trials[0].info.run_id, "faces_bad", "--alias", "latest"], "--alias='latest' is invalid"),
    ]:
        with pytest.raises(ColorizeError, match=re.escape(line)):
            register([*argv, "--uri", mlflow_uri])
    assert not MlflowClient(tracking_uri=mlflow_uri).search_registered_models("name = 'faces_bad'")
    proc = run_cli(diverged.info.run_id, "faces_bad", "--uri", mlflow_uri, module="colorize.register")
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1].startswith("colorize: error: run ")
