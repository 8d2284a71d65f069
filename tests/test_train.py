"""End to end: `python -m colorize.train` on real faces, checked in a real MLflow store."""

import shutil
from pathlib import Path

import pytest
import torch

from colorize.training.checkpoint import load_model
from colorize.job import JobContext, run_job
from colorize.training.metrics import margin_accuracy
from colorize.data.faces import load_split
from colorize.data.images import to_unit_range
from tests.conftest import METRICS, run_script, runs_in, run_cli



@pytest.fixture(scope="module")
def trained(faces, mlflow_uri, tmp_path_factory):
    """One CLI run on 64 real faces for 3 epochs, tracked in the session's store."""
    out = tmp_path_factory.mktemp("run")
    proc = run_cli(
        "data=faces", f"data.root={faces}", "data.limit=64", "model.layers=2", "model.channels=16",
        "model.kernel_size=5", "model.tanh=true", "optimizer.lr=0.1", "trainer.max_epochs=3",
        f"tracking.uri={mlflow_uri}", "tracking.experiment=e2e", f"hydra.run.dir={out}",
        env={"OMP_NUM_THREADS": "3"},  # more than this machine's share of the cores: honoured all the same
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    client, runs = runs_in(mlflow_uri, "e2e")
    assert len(runs) == 1
    return client, runs[0], out, proc


@pytest.mark.e2e
def test_run_logs_params_per_epoch_metrics_and_artifacts(trained):
    client, run, out, proc = trained
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["model.layers"] == "2" and params["model.kernel_size"] == "5"
    assert params["model.channels"] == "16" and params["model.tanh"] == "True"
    assert params["optimizer.lr"] == "0.1" and params["trainer.batch_size"] == "16"
    assert params["data.name"] == "faces" and params["data.limit"] == "64"
    assert run.data.tags["num_threads"] == "3"  # trainer.num_threads=0 (auto) takes $OMP_NUM_THREADS
    for key in METRICS:
        history = client.get_metric_history(run.info.run_id, key)
        assert sorted(m.step for m in history) == [1, 2, 3], key
    assert 1 <= run.data.metrics["best_epoch"] <= 3
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "best.pt", "samples.png"} <= artifacts
    assert "epoch   3/3" in proc.stderr + proc.stdout  # one summary line per epoch


@pytest.mark.e2e
def test_run_records_its_provenance(trained):
    """The commit (git rev-parse HEAD), the installed versions, the CPU and its ISA, and MLflow's context tags."""
    import subprocess
    from importlib import metadata

    from tests.conftest import ROOT

    _, run, _, _ = trained
    tags = run.data.tags
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert tags["git_commit"] == head and tags["git_dirty"] in ("true", "false")
    for name in ("torch", "hydra-core", "optuna", "mlflow", "numpy"):
        assert tags[f"version.{name}"] == metadata.version(name)
    cpuinfo = Path("/proc/cpuinfo").read_text()
    assert tags["cpu"] in cpuinfo and tags["cpu_isa"] == torch.backends.cpu.get_cpu_capability()
    assert tags["mlflow.user"] and tags["mlflow.source.type"] == "LOCAL" and tags["mlflow.source.name"]
    assert tags["mlflow.source.git.commit"] == head


@pytest.mark.e2e
def test_checkpoint_reloads_without_pickle_and_reproduces_val_accuracy(trained, faces):
    client, run, out, _ = trained
    local = client.download_artifacts(run.info.run_id, "best.pt", str(out / "dl"))
    payload = torch.load(local, weights_only=True)
    assert payload["model_config"]["layers"] == 2
    model, payload = load_model(Path(local))
    val = load_split(faces, "val", 64)
    with torch.inference_mode():
        pred = model.eval()(to_unit_range(val.gray))
    acc = margin_accuracy(pred, to_unit_range(val.rgb))
    best = int(run.data.metrics["best_epoch"])
    logged = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "val_margin12_accuracy")}
    assert acc == pytest.approx(logged[best], abs=1e-6)


@pytest.mark.parametrize("recipe", [["model.layers=2", "model.batch_norm=true"], ["experiment=best"]])
def test_same_command_twice_gives_the_same_metrics(make_cfg, faces, mlflow_uri, tmp_path, recipe):
    overrides = [
        *recipe, "data=faces", f"data.root={faces}", "data.limit=48",
        "trainer.max_epochs=2", f"tracking.uri={mlflow_uri}", "tracking.experiment=determinism",
    ]
    first = run_job(make_cfg(*overrides), JobContext(tmp_path / "a"))
    second = run_job(make_cfg(*overrides), JobContext(tmp_path / "b"))
    assert first.fit.history and len(first.fit.history) == 2
    strip = lambda h: [{k: v for k, v in e.items() if k != "epoch_seconds"} for e in h]  # noqa: E731
    assert strip(first.fit.history) == strip(second.fit.history)
    assert first.objective == second.objective


@pytest.fixture(scope="module")
def bad_folders(tmp_path_factory, faces):
    """Course-layout roots: one with an empty split, one with a corrupt JPEG."""
    base = tmp_path_factory.mktemp("bad")
    empty, corrupt = base / "empty", base / "corrupt"
    for root in (empty, corrupt):
        for split in ("train", "val"):
            (root / split / "images").mkdir(parents=True)
    for split in ("train", "val"):
        for i in range(4):
            shutil.copy(faces / split / "images" / f"{i}.jpg", corrupt / split / "images" / f"{i}.jpg")
    (corrupt / "train" / "images" / "3.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return {"empty": empty, "corrupt": corrupt}


@pytest.mark.e2e
@pytest.mark.parametrize(
    "overrides,expected",
    [
        (["model.layers=0"], "model.layers=0 is invalid: must be an integer >= 1"),
        (["model.kernel_size=4"], "model.kernel_size=4 is invalid: must be an odd integer"),
        (["optimizer.lr=-1"], "optimizer.lr=-1.0 is invalid: must be a finite number > 0"),
        (["trainer.batch_size=0"], "trainer.batch_size=0 is invalid: must be >= 1"),
        (["data=faces", "data.root=/nonexistent"], "data.root='/nonexistent' does not exist"),
        (["data=faces", "data.root={empty}"], "empty/train/images' holds no images"),
        (["data=faces", "data.root={corrupt}"], "cannot read image '{corrupt}/train/images/3.jpg'"),
        (["model=unet", "model.depth=4", "model.stride=2", "data.limit=8"],  # known once the images are read
         "model.depth=4 does not suit 80x80 images: model.stride x 2^model.depth = 32 must divide their height and "
         "width; with these images, model.depth <= 3 at model.stride=2"),
    ],
)
def test_bad_input_is_one_line_and_loses_nothing(overrides, expected, bad_folders, mlflow_uri, tmp_path):
    overrides = [o.format(**bad_folders) for o in overrides]
    expected = expected.format(**bad_folders)
    _, before = runs_in(mlflow_uri, "e2e")
    proc = run_cli(*overrides, "trainer.max_epochs=1", f"tracking.uri={mlflow_uri}",
                   "tracking.experiment=e2e", f"hydra.run.dir={tmp_path}")
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "Warning" not in line]
    assert lines[-1].startswith("colorize: error: ") and expected in lines[-1], proc.stderr
    assert "Traceback" not in proc.stderr
    _, after = runs_in(mlflow_uri, "e2e")
    assert [r.info.run_id for r in after] == [r.info.run_id for r in before]


@pytest.mark.e2e
def test_experiment_best_is_reproducible_with_the_same_seed(faces, mlflow_uri, tmp_path):
    """The shipped recipe (U-Net, bf16, mirroring, cosine lr), shrunk: two runs, identical histories."""
    shrink = ["experiment=best", f"data.root={faces}", "data.limit=48", "trainer.max_epochs=2", "model.channels=8",
              f"tracking.uri={mlflow_uri}", "tracking.experiment=reproduce"]
    for name in ("a", "b"):
        proc = run_cli(*shrink, f"tracking.run_name={name}", f"hydra.run.dir={tmp_path / name}")
        assert proc.returncode == 0, proc.stderr[-3000:]
    client, runs = runs_in(mlflow_uri, "reproduce")
    histories = [
        {key: [m.value for m in sorted(client.get_metric_history(r.info.run_id, key), key=lambda m: m.step)]
         for key in METRICS}
        for r in runs
    ]
    assert len(histories) == 2 and len(histories[0]["val_mse"]) == 2
    assert histories[0] == histories[1]


@pytest.mark.e2e
def test_budgeted_run_anneals_within_its_budget_and_replays(faces, mlflow_uri, tmp_path):
    """trainer.max_minutes fixes N from the first epoch; the cosine ends at its floor on epoch N, and
    trainer.max_epochs=N without a budget replays the run exactly. Asserted on the N the run logged,
    whatever the machine's load made it (the rule itself is tested with an injected clock)."""
    budget_min = 0.05  # 3 s: a handful of epochs of this net on 400 faces
    common = ["data=faces", f"data.root={faces}", "data.limit=400", "model.layers=2", "model.channels=16",
              "model.kernel_size=5", "optimizer.lr=0.1", "scheduler=cosine", "scheduler.eta_min=0.001",
              f"tracking.uri={mlflow_uri}", "tracking.experiment=budget"]
    proc = run_cli(*common, "trainer.max_epochs=100", f"trainer.max_minutes={budget_min}",
                   "tracking.run_name=budgeted", f"hydra.run.dir={tmp_path / 'a'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    client, runs = runs_in(mlflow_uri, "budget")
    run = runs[0]
    n = int(run.data.params["trainer.budget_epochs"])
    assert 1 <= n < 100

    def history(run_id, key):
        return [m.value for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]

    lrs = history(run.info.run_id, "lr")
    cut = "time_budget" in run.data.tags  # the machine slowed by > 20% after epoch 1: cut short, tagged
    assert len(lrs) < n if cut else len(lrs) == n
    assert lrs[0] == pytest.approx(0.1) and (cut or n == 1 or lrs[-1] == pytest.approx(0.001))
    proc = run_cli(*common, f"trainer.max_epochs={n}", "tracking.run_name=replay", f"hydra.run.dir={tmp_path / 'b'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    replay = next(r for r in runs_in(mlflow_uri, "budget")[1] if r.info.run_name == "replay")
    for key in METRICS + ["lr"]:
        assert history(replay.info.run_id, key)[:len(lrs)] == history(run.info.run_id, key), key


def test_new_experiments_open_on_the_runs_table(mlflow_uri):
    """MLflow 3's UI shows an experiment tagged as custom model development on its runs table."""
    from colorize.tracking.store import Tracker

    tracker = Tracker(mlflow_uri, "kind-check")
    from mlflow.tracking import MlflowClient

    tags = MlflowClient(tracking_uri=mlflow_uri).get_experiment(tracker.experiment_id).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"


@pytest.mark.e2e
def test_tracking_store_follows_mlflow_tracking_uri_else_mlflow_db_where_the_command_runs(faces, tmp_path):
    """No tracking.uri given: $MLFLOW_TRACKING_URI decides the store, as it does for MLflow itself;
    without it, ./mlflow.db -- the store a plain `mlflow ui` opens in that folder."""
    db = tmp_path / "x.db"
    args = ["data=faces", f"data.root={faces}", "data.limit=8", "trainer.max_epochs=1", "tracking.experiment=env-store"]
    proc = run_script("colorize-train", *args, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path,
                      env={"MLFLOW_TRACKING_URI": f"sqlite:///{db}"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, runs = runs_in(f"sqlite:///{db}", "env-store")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    proc = run_script("colorize-train", *args, f"hydra.run.dir={tmp_path / 'run2'}", cwd=tmp_path,
                      drop=("MLFLOW_TRACKING_URI",))
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, runs = runs_in(f"sqlite:///{tmp_path / 'mlflow.db'}", "env-store")
    assert len(runs) == 1 and (tmp_path / "mlartifacts").is_dir()


def test_resume_names_the_overrides_that_would_change_the_run(make_cfg):
    from colorize.config import typed, plain
    from colorize.tracking.attempts import resume_conflicts

    saved = typed(plain(make_cfg("model.layers=2", "optimizer.lr=0.1")))
    same = ["trainer.resume=abc", "model.layers=2", "optimizer.lr=0.1", "tracking.experiment=x",
            "trainer.num_threads=1"]
    assert resume_conflicts(make_cfg(*same), saved, same) == []
    changed = ["trainer.resume=abc", "model.layers=4", "optimizer.lr=0.1", "trainer.max_epochs=9", "model=unet"]
    assert resume_conflicts(make_cfg(*changed[:4]), saved, changed[:4]) == ["model.layers=4", "trainer.max_epochs=9"]
    assert resume_conflicts(make_cfg("model=unet"), saved, ["model=unet"]) == ["model=unet"]


@pytest.mark.e2e
def test_resume_of_a_finished_run_with_a_conflicting_override_is_a_one_line_error(trained, mlflow_uri, tmp_path):
    """A finished run is refused first (nothing to resume); the conflicting override of an unfinished
    one is refused by name (tests/tracking/test_attempts.py)."""
    _, run, _, _ = trained
    proc = run_cli(f"trainer.resume={run.info.run_id}", "model.layers=4", f"tracking.uri={mlflow_uri}",
                   "tracking.experiment=e2e", f"hydra.run.dir={tmp_path}")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    last = [line for line in proc.stderr.splitlines() if line.strip()][-1]
    assert last.startswith(f"colorize: error: run {run.info.run_id} finished at epoch") and "nothing to resume" in last
