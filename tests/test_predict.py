"""Estimations in the course's submission format and the evaluator, on real faces."""


import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from colorize.evaluate import score
from colorize.job import JobContext, run_job
from colorize.errors import ColorizeError
from tests.conftest import run_cli

VAL_LIMIT = 40


@pytest.fixture(scope="module")
def trained_run(faces, mlflow_uri, tmp_path_factory):
    """A short real training run (first 40 val images) with its checkpoint in MLflow."""
    from hydra import compose, initialize_config_module
    from colorize.paths import CONFIG_MODULE

    with initialize_config_module(CONFIG_MODULE):
        cfg = compose("train", overrides=[
            "data=faces", f"data.root={faces}", f"data.limit={VAL_LIMIT}", "model.layers=2", "model.tanh=true",
            "optimizer.lr=0.1", "trainer.max_epochs=2", f"tracking.uri={mlflow_uri}", "tracking.experiment=predict",
        ])
    out = tmp_path_factory.mktemp("trained")
    result = run_job(cfg, JobContext(out))
    return result.run_id, out / "best.pt"


@pytest.mark.e2e
def test_test_split_estimations_have_the_submission_format(faces, trained_run, mlflow_uri, tmp_path):
    run_id, _ = trained_run
    proc = run_cli(run_id, str(faces / "test" / "images"), "--out", str(tmp_path), "--uri", mlflow_uri,
                   module="colorize.predict")
    assert proc.returncode == 0, proc.stderr[-3000:]
    est = np.load(tmp_path / "estimations.npy")
    assert est.shape == (100, 80, 80, 3) and est.dtype == np.uint8
    names = (tmp_path / "img_names.txt").read_text().splitlines()
    assert len(names) == 100 and names[0].endswith("test/images/0.jpg") and names[10].endswith("/10.jpg")


@pytest.mark.e2e
@pytest.mark.parametrize("form", ["run_id", "runs_uri", "path"])
def test_val_estimations_score_what_training_logged(faces, trained_run, mlflow_uri, tmp_path, form):
    run_id, ckpt = trained_run
    model = {"run_id": run_id, "runs_uri": f"runs:/{run_id}/best.pt", "path": str(ckpt)}[form]
    proc = run_cli(model, str(faces / "val" / "images"), "--limit", str(VAL_LIMIT), "--out", str(tmp_path),
                   "--uri", mlflow_uri, module="colorize.predict")
    assert proc.returncode == 0, proc.stderr[-3000:]
    ev = run_cli(str(tmp_path / "estimations.npy"), str(tmp_path / "img_names.txt"), module="colorize.evaluate")
    assert ev.returncode == 0, ev.stderr
    printed = float(ev.stdout.split("12-margin accuracy:")[1].split()[0])
    run = MlflowClient(tracking_uri=mlflow_uri).get_run(run_id)
    assert printed == pytest.approx(run.data.metrics["best_val_margin12_accuracy"], abs=5e-5)


def test_score_against_hand_made_arrays():
    truth = np.zeros((2, 2, 2, 3), dtype=np.uint8)
    est = truth.copy()
    est[0, 0, 0] = [11, 12, 200]  # image 0: 2 of 12 values off by >= 12
    est[1] = 12  # image 1: every value off by exactly 12
    assert score(est, truth) == pytest.approx(((12 - 2) / 12 + 0) / 2)
    with pytest.raises(ColorizeError, match=r"shape \(2, 2, 2, 3\) but the ground truth is \(1, 2, 2, 3\)"):
        score(est, truth[:1])


@pytest.mark.e2e
def test_evaluate_reads_ground_truth_from_the_listed_paths(tmp_path):
    truth = np.full((4, 5, 3), 100, dtype=np.uint8)
    for i in range(2):
        Image.fromarray(truth).save(tmp_path / f"{i}.png")
    est = np.stack([truth, truth]).copy()
    est[1, 0, 0, 0] = 120  # one value of 60 off in image 1
    np.save(tmp_path / "est.npy", est)
    (tmp_path / "names.txt").write_text(f"{tmp_path}/0.png\n{tmp_path}/1.png\n")
    proc = run_cli(str(tmp_path / "est.npy"), str(tmp_path / "names.txt"), module="colorize.evaluate")
    assert proc.returncode == 0, proc.stderr
    assert f"12-margin accuracy: {(1 + 59 / 60) / 2:.4f}" in proc.stdout
    cast = est.copy()
    cast[0, ..., 2] += 14  # image 0 turns blue: B 14 too high, corrected by a Cb offset of -8
    cast[1, 0, 0, 0] = 200  # image 1: one value 100 off, which no cast correction reaches
    np.save(tmp_path / "est.npy", cast)
    proc = run_cli(str(tmp_path / "est.npy"), str(tmp_path / "names.txt"), "--cast", module="colorize.evaluate")
    assert proc.returncode == 0, proc.stderr
    assert f"12-margin accuracy: {(2 / 3 + 59 / 60) / 2:.4f}" in proc.stdout
    assert f"with each image's colour cast corrected: {(1 + 59 / 60) / 2:.4f}" in proc.stdout
    assert "the images' casts foreseen: R² nan (mean Cb), nan (mean Cr)" in proc.stdout  # both truths gray


@pytest.mark.e2e
def test_mismatched_estimations_fail_clearly(tmp_path, faces):
    np.save(tmp_path / "est.npy", np.zeros((3, 80, 80, 3), dtype=np.uint8))
    (tmp_path / "names.txt").write_text(f"{faces}/val/images/0.jpg\n{faces}/val/images/1.jpg\n")
    proc = run_cli(str(tmp_path / "est.npy"), str(tmp_path / "names.txt"), module="colorize.evaluate")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == "colorize: error: 2 image names but 3 estimations: counts must match"
    np.save(tmp_path / "est.npy", np.zeros((2, 64, 64, 3), dtype=np.uint8))
    proc = run_cli(str(tmp_path / "est.npy"), str(tmp_path / "names.txt"), module="colorize.evaluate")
    assert proc.returncode == 1 and "estimations have shape (2, 64, 64, 3) but the ground truth is (2, 80, 80, 3)" in proc.stderr
    np.save(tmp_path / "est.npy", np.zeros((2, 80, 80, 3), dtype=np.float32))
    proc = run_cli(str(tmp_path / "est.npy"), str(tmp_path / "names.txt"), module="colorize.evaluate")
    assert proc.returncode == 1 and "must be a uint8 array N x H x W x 3, got float32" in proc.stderr


@pytest.mark.e2e
def test_missing_run_and_empty_folder_fail_clearly(faces, mlflow_uri, tmp_path):
    proc = run_cli("f" * 32, str(faces / "test" / "images"), "--uri", mlflow_uri, "--out", str(tmp_path),
                   module="colorize.predict")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"colorize: error: run '{'f' * 32}' does not exist in the MLflow store" in proc.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_cli("f" * 32, str(empty), "--uri", mlflow_uri, "--out", str(tmp_path), module="colorize.predict")
    assert proc.returncode == 1 and f"data folder '{empty}' holds no images" in proc.stderr
