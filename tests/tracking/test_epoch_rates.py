"""benchmarks/epoch_rates.py: the rates once trials run, read from a real MLflow store as
benchmarks.throughput leaves it, and the study estimate, against hand-computed values."""

from mlflow.tracking import MlflowClient

from benchmarks.epoch_rates import GRID_TRIALS, main, study_seconds, study_seconds_at_once


def _trial(client, experiment_id, start_ms, end_ms, epochs, parent=None, status="FINISHED"):
    tags = {"mlflow.parentRunId": parent} if parent else {}
    run = client.create_run(experiment_id, start_time=start_ms, tags=tags)
    for step, seconds in enumerate(epochs, start=1):
        client.log_metric(run.info.run_id, "epoch_seconds", seconds, step=step)
    client.set_terminated(run.info.run_id, status=status, end_time=end_ms)
    return run.info.run_id


def test_rates_come_from_each_finished_trials_epochs(tmp_path):
    db = tmp_path / "procs2_graphs-2-conv_k5_c8.db"
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    experiment_id = client.create_experiment("colorize")
    parent = _trial(client, experiment_id, 0, 30_000, [])  # a sweep's parent: no epochs, left out
    _trial(client, experiment_id, 10_000, 15_000, [2.0, 1.0, 1.0, 1.0], parent)  # first epoch left out: 1.0
    _trial(client, experiment_id, 12_000, 20_000, [3.0, 2.0, 2.0, 4.0], parent)  # median of 2, 2, 4: 2.0
    _trial(client, experiment_id, 11_000, 40_000, [9.0], parent, status="KILLED")  # cut short: left out
    rows = main([str(tmp_path), "--out", str(tmp_path / "rates")])
    assert rows == [{"store": "procs2_graphs-2-conv_k5_c8", "trials": 2, "epochs": 8, "median_epoch_s": "1.500",
                     "steady_epochs_per_s": "1.50",  # 1/1.0 + 1/2.0
                     "window_epochs_per_s": "0.80", "window_s": "10.0"}]  # 8 epochs from 10 s to 20 s
    written = (tmp_path / "rates" / "epoch_rates.csv").read_text().splitlines()
    assert written[1].startswith("procs2_graphs-2-conv_k5_c8,2,8,")


def test_the_study_estimate_counts_a_start_up_per_preset_and_waves_of_trials():
    assert sum(GRID_TRIALS.values()) == 93  # 31 configurations x 3 seeds
    # waves of 16: 1 + 1 + 2 + 2 + 2 = 8, each 100 epochs x 0.9 s + 1 s; 5 start-ups of 55 s
    assert study_seconds(GRID_TRIALS, 100, 0.9, 16, 55, 1) == 5 * 55 + 8 * 91
    assert study_seconds({"lr": 30}, 10, 1.0, 1, 20) == 20 + 30 * 10


def test_the_study_estimate_at_once_counts_one_start_up_and_the_slowest_presets_waves():
    # 16 jobs split 2, 2, 3, 5, 4: every preset in 6 waves or fewer (30 / 5, 24 / 4, 18 / 3, ...)
    assert study_seconds_at_once(GRID_TRIALS, 100, 0.9, 16, 55, 1) == 55 + 6 * 91
    assert study_seconds_at_once({"lr": 30, "layers": 9}, 10, 1.0, 1, 20) == study_seconds(
        {"lr": 30, "layers": 9}, 10, 1.0, 1, 20)  # one job cannot run two presets at once

