"""MlflowMetrics (colorize/tracking/callbacks.py): every epoch's metrics at step = epoch."""

from pathlib import Path

from colorize import names
from colorize.tracking.callbacks import MlflowMetrics
from colorize.tracking.store import Tracker
from colorize.training.callback import CallbackContext


def test_every_epochs_metrics_land_at_their_epoch_and_a_budget_records_its_epochs(mlflow_uri):
    tracker = Tracker(mlflow_uri, "callbacks")
    run = tracker.create_run("metrics")
    callback = MlflowMetrics()
    callback.setup(CallbackContext(run=run, model=None, cfg=None, output_dir=Path(".")))
    callback.on_plan(12, measured=False)  # known from the start: nothing to record
    callback.on_plan(7, measured=True)  # fixed by a time budget
    for epoch in (1, 2):
        callback.on_epoch_end(epoch, {names.VAL_MSE: 0.1 / epoch, names.TRAIN_MSE: 0.2 / epoch}, state=None)
    run.end()
    stored = tracker.get_run(run.run_id)
    assert stored.data.params == {names.BUDGET_EPOCHS: "7"}
    assert tracker.metric_history(run.run_id, names.VAL_MSE) == [(1, 0.1), (2, 0.05)]
    assert tracker.metric_history(run.run_id, names.TRAIN_MSE) == [(1, 0.2), (2, 0.1)]
