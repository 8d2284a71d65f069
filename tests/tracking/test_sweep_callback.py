"""The sweep's parent run and its summary (colorize/tracking/sweep_callback.py, parent_run.py)."""

from colorize import names
from colorize.folders import FolderLock
from colorize.tracking.store import Tracker
from colorize.tracking.parent_run import summarize, to_markdown
from colorize.tracking.sweep_callback import MlflowSweepCallback
from colorize.tables import records_csv


def test_the_summary_has_one_row_per_trial_with_the_swept_values(mlflow_uri):
    tracker = Tracker(mlflow_uri, "summary")
    parent = tracker.create_run("lr", tags={names.SWEEP_TAG: "lr"})
    ids = []
    for lr, status, error in (("0.1", "FINISHED", 0.25), ("1.0", "FAILED", None)):
        run = tracker.create_run(f"lr{lr}", parent_run_id=parent.run_id)
        run.log_params({"optimizer.lr": lr, "model.layers": 2})
        if error is not None:
            run.log_metrics({names.OBJECTIVE: error, names.BEST_EPOCH: 4}, step=4)
        else:
            run.fail(**{names.DIVERGED: "true"})
        run.end(status)
        ids.append(run.run_id)
    swept, rows = summarize(tracker.children(parent.run_id))
    assert swept == ["optimizer.lr"]  # model.layers is the same in both: not a swept axis
    by_lr = {r["optimizer.lr"]: r for r in rows}
    assert by_lr["0.1"] == {"run": "lr0.1", "optimizer.lr": "0.1", names.BEST_EPOCH: 4, names.OBJECTIVE: 0.25,
                            "status": "finished", "run_id": ids[0]}
    assert by_lr["1.0"]["status"] == "diverged" and by_lr["1.0"][names.OBJECTIVE] == ""
    table = to_markdown([by_lr["0.1"]])
    assert table == ("| run | optimizer.lr | best_epoch | best_val_margin12_error | status | run_id |\n"
                     f"|---|---|---|---|---|---|\n| lr0.1 | 0.1 | 4 | 0.2500 | finished | {ids[0]} |\n")
    assert records_csv([by_lr["0.1"]]).splitlines()[1] == f"lr0.1,0.1,4,0.25,finished,{ids[0]}"
    assert to_markdown([]) == "(no trials)\n"


def test_every_command_locks_its_folder_first_then_tracks_its_sweep(make_cfg):
    hydra = make_cfg(return_hydra_config=True).hydra
    callbacks = [c._target_ for c in hydra.callbacks.values()]
    assert callbacks == [f"{FolderLock.__module__}.{FolderLock.__name__}",
                         f"{MlflowSweepCallback.__module__}.{MlflowSweepCallback.__name__}"]
