"""Which run a job writes into (colorize.tracking.attempts): one test per branch, against a real
sqlite MLflow store, real Hydra configs and real checkpoints."""

import math
import subprocess
import sys

import pytest

from colorize import names
from colorize.config import build, plain
from colorize.errors import ColorizeError
from colorize.tracking.attempts import NEW, RESTART, RESUME, SKIP, Attempt, computed_overrides, decide, fingerprint
from colorize.tracking.owners import owner_tags
from colorize.tracking.parent_run import interrupted_sweep
from colorize.tracking.store import Tracker
from colorize.training.checkpoint import LAST
from colorize.training.checkpoint import save_checkpoint

OVERRIDES = ["model.layers=2", "trainer.max_epochs=3"]


@pytest.fixture
def store(mlflow_uri, request):
    return Tracker(mlflow_uri, f"attempts-{request.node.name}")


@pytest.fixture
def cfg(make_cfg, store):
    return make_cfg(*OVERRIDES, f"tracking.uri={store.uri}", f"tracking.experiment={store.experiment_name}")


def child(store, parent, cfg, tmp_path, status=None, checkpoint=False, **tags):
    """An earlier attempt of `cfg` under `parent`: ended with `status` (None: left RUNNING)."""
    out = tmp_path / f"attempt-{len(store.children(parent))}"
    run = store.create_run("earlier", tags={names.FINGERPRINT_TAG: fingerprint(cfg), names.OUTPUT_DIR_TAG: str(out),
                                            **owner_tags(), **tags}, parent_run_id=parent)
    if checkpoint:
        model = build(cfg.model)
        history = [{names.VAL_MSE: 0.02, names.TRAIN_MSE: 0.03}]
        save_checkpoint(out / LAST, model, plain(cfg.model), run_id=run.run_id, config=plain(cfg),
                        train_state={"epoch": 1, "history": history, "model": model.state_dict()})
    if status:
        run.end(status)
    return run.run_id


def sweep(store):
    parent = store.create_run("sweep")
    return parent.run_id


def test_outside_a_sweep_a_job_is_new(store, cfg):
    attempt = decide(cfg, store, None, OVERRIDES)
    assert isinstance(attempt, Attempt)
    assert attempt.action == NEW and attempt.cfg is cfg and attempt.run_id == "" and attempt.train_state == {}


def test_a_new_job_in_a_sweep_is_new(store, cfg, make_cfg, tmp_path):
    parent = sweep(store)
    other = make_cfg("model.layers=4", "trainer.max_epochs=3")  # a different job: another fingerprint
    child(store, parent, other, tmp_path, status="FINISHED")
    assert decide(cfg, store, parent, OVERRIDES).action == NEW


def test_a_job_that_finished_in_this_sweep_is_skipped_with_its_objective(store, cfg, tmp_path):
    parent = sweep(store)
    done = child(store, parent, cfg, tmp_path)
    store.tracked_run(done).log_metrics({names.OBJECTIVE: 0.25}, step=1)
    store.tracked_run(done).end("FINISHED")
    attempt = decide(cfg, store, parent, OVERRIDES)
    assert (attempt.action, attempt.run_id, attempt.status, attempt.objective) == (SKIP, done, "FINISHED", 0.25)


def test_a_job_that_diverged_in_this_sweep_is_skipped_as_nan(store, cfg, tmp_path):
    parent = sweep(store)
    diverged = child(store, parent, cfg, tmp_path, status="FAILED", **{names.DIVERGED: "true"})
    attempt = decide(cfg, store, parent, OVERRIDES)
    assert attempt.action == SKIP and attempt.run_id == diverged and math.isnan(attempt.objective)


def test_a_killed_job_with_a_checkpoint_is_resumed_from_it(store, cfg, tmp_path):
    parent = sweep(store)
    killed = child(store, parent, cfg, tmp_path, status="KILLED", checkpoint=True)
    attempt = decide(cfg, store, parent, OVERRIDES)
    assert (attempt.action, attempt.run_id, attempt.train_state["epoch"]) == (RESUME, killed, 1)


def test_a_job_killed_before_its_first_checkpoint_restarts_in_its_own_run(store, cfg, tmp_path):
    parent = sweep(store)
    killed = child(store, parent, cfg, tmp_path, status="KILLED")
    attempt = decide(cfg, store, parent, OVERRIDES)
    assert (attempt.action, attempt.run_id, attempt.train_state) == (RESTART, killed, {})


def test_a_job_whose_epochs_are_logged_but_whose_checkpoint_is_gone_starts_over_as_a_new_run(store, cfg, tmp_path):
    """(Its last.pt lost with its folder, or never written: `~callbacks.checkpoint`.) Its logged epochs
    stay on record in the killed run; the rerun's epochs go to a new one."""
    parent = sweep(store)
    killed = child(store, parent, cfg, tmp_path)
    store.tracked_run(killed).log_metrics({names.VAL_MSE: 0.02}, step=1)
    store.tracked_run(killed).end("KILLED")
    attempt = decide(cfg, store, parent, OVERRIDES)
    assert attempt.action == NEW
    assert store.get_run(killed).info.status == "KILLED"


def test_a_group_interrupted_as_it_opened_its_runs_trains_again_in_the_same_runs(
        handlers, store, make_cfg, faces, tmp_path):
    """Two jobs of a fused group: a real SIGTERM as the second's run is created (both runs then end
    KILLED with their params, no epoch trained). The same jobs again, in the same sweep, restart those
    two runs in place and finish them: two runs for two jobs, not four."""
    from colorize.interrupts import install
    from colorize.job import JobContext, run_jobs
    from tests.conftest import sigterm_inside

    install()
    parent = sweep(store)
    where = [f"tracking.uri={store.uri}", f"tracking.experiment={store.experiment_name}"]
    cfgs = [make_cfg("data=faces", f"data.root={faces}", "data.limit=16", "trainer.max_epochs=2",
                     f"trainer.seed={seed}", *where) for seed in (0, 1)]
    ctxs = [JobContext(tmp_path / str(seed), parent_run_id=parent) for seed in (0, 1)]
    with sigterm_inside("INSERT INTO runs", nth=2), pytest.raises(KeyboardInterrupt):
        run_jobs(cfgs, ctxs)
    killed = {r.data.params["trainer.seed"]: r.info.run_id for r in store.children(parent)}
    assert [r.info.status for r in store.children(parent)] == ["KILLED", "KILLED"]
    results = run_jobs(cfgs, ctxs)
    runs = store.children(parent)
    assert [r.info.status for r in runs] == ["FINISHED", "FINISHED"]
    assert [res.run_id for res in results] == [killed["0"], killed["1"]]  # the same runs
    for run in runs:
        assert [s for s, _ in store.metric_history(run.info.run_id, names.VAL_MSE)] == [1, 2]
        assert names.FAILURE_TAG not in run.data.tags


def test_an_orphan_is_resumed_and_a_live_run_is_left_alone(store, cfg, tmp_path):
    """RUNNING with its owner gone (SIGKILL) is an orphan; RUNNING with a live owner is someone else's."""
    parent = sweep(store)
    live = child(store, parent, cfg, tmp_path, checkpoint=True)  # owned by this (live) process
    assert decide(cfg, store, parent, OVERRIDES).action == NEW
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    store.tracked_run(live).set_tags({"pid": dead.stdout.strip()})  # its owner has exited
    attempt = decide(cfg, store, parent, OVERRIDES)
    assert (attempt.action, attempt.run_id) == (RESUME, live)


def test_trainer_resume_takes_the_run_saved_config_and_refuses_conflicts(store, cfg, make_cfg, tmp_path):
    parent = sweep(store)
    run_id = child(store, parent, cfg, tmp_path, status="KILLED", checkpoint=True)
    where = [f"tracking.uri={store.uri}", f"tracking.experiment={store.experiment_name}"]
    given = make_cfg(f"trainer.resume={run_id}", "trainer.num_threads=1", *where)
    attempt = decide(given, store, None, [f"trainer.resume={run_id}", "trainer.num_threads=1"])
    assert attempt.action == RESUME and attempt.run_id == run_id
    assert attempt.cfg.model.layers == 2 and attempt.cfg.trainer.max_epochs == 3  # the saved run's, not the defaults
    changed = make_cfg(f"trainer.resume={run_id}", "model.layers=4", *where)
    with pytest.raises(ColorizeError, match="model.layers=4 would change it"):
        decide(changed, store, None, [f"trainer.resume={run_id}", "model.layers=4"])
    with pytest.raises(ColorizeError, match="neither a checkpoint file nor a run"):
        decide(make_cfg("trainer.resume=0123456789abcdef", *where), store, None, [])


def test_a_checkpoint_from_before_the_package_moved_resumes(store, make_cfg, tmp_path):
    """Checkpoints from before the package was grouped by layer name colorize.schedules.*: the saved
    config loads under the new module path (colorize/config/compat.py)."""
    cfg = make_cfg("scheduler=cosine", *OVERRIDES)
    saved = plain(cfg)
    saved["scheduler"]["_target_"] = "colorize.schedules.cosine"  # as it was written then
    del saved["callbacks"], saved["loss"]  # there were no callbacks nor loss group then
    run = store.create_run("old")
    run.end("KILLED")  # interrupted (a live run is not resumed)
    save_checkpoint(tmp_path / LAST, build(cfg.model), plain(cfg.model), run_id=run.run_id, config=saved,
                    train_state={"epoch": 1, "history": []})
    attempt = decide(make_cfg(f"trainer.resume={tmp_path / LAST}"), store, None, [])
    assert attempt.action == RESUME and attempt.cfg.scheduler._target_ == "colorize.training.schedules.cosine"
    assert list(attempt.cfg.callbacks) == ["checkpoint", "mlflow", "console", "optuna"]  # today's callbacks watch it
    assert attempt.cfg.loss._target_ == "colorize.training.losses.mse"  # what it trained on


def test_the_report_leaves_out_killed_attempts_a_rerun_replaced_and_keeps_the_rest(store, cfg, make_cfg, tmp_path):
    from colorize.tracking.results import load_sweep

    parent = sweep(store)
    other = make_cfg("model.layers=4", "trainer.max_epochs=3", f"tracking.uri={store.uri}")
    replaced = child(store, parent, cfg, tmp_path, status="KILLED")
    rerun = child(store, parent, cfg, tmp_path, status="FINISHED")
    not_rerun = child(store, parent, other, tmp_path, status="KILLED")
    untagged = store.create_run("no fingerprint", parent_run_id=parent)  # a run from before fingerprints
    untagged.end("KILLED")
    loaded = load_sweep(store, parent)
    kept = {t.run_id for t in loaded.trials}
    assert kept == {rerun, not_rerun, untagged.run_id} and replaced not in kept
    assert loaded.superseded == 1
    assert "2 trial(s) killed" in loaded.incomplete()


def test_computed_overrides_set_aside_those_of_how_fast_not_what():
    command = ("sweep=lr data=faces trainer.cuda_graphs=on trainer.num_threads=4 +tracking.run_name=x "
               "trainer.seed=0,1,2 trainer.sync_every_step=true trainer.max_epochs=100 ~callbacks.samples")
    assert computed_overrides(command) == ["sweep=lr", "data=faces", "trainer.seed=0,1,2", "trainer.max_epochs=100"]
    assert computed_overrides("") == []


def test_an_interrupted_sweep_is_found_whatever_its_speed_settings_but_not_with_other_computations(mlflow_uri):
    store = Tracker(mlflow_uri, "interrupted-speed")
    killed = store.create_run("lr", tags={names.SWEEP_TAG: "lr", names.OVERRIDES_TAG: "sweep=lr trainer.max_epochs=5"})
    killed.end("KILLED")
    same = "sweep=lr trainer.cuda_graphs=on trainer.max_epochs=5 trainer.num_threads=2"
    assert interrupted_sweep(store, "lr", same).info.run_id == killed.run_id
    assert interrupted_sweep(store, "lr", "sweep=lr trainer.max_epochs=6") is None
