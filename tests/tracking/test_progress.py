"""Progress lines: trials planned from the real presets, best so far, pace-based ETA."""

from types import SimpleNamespace

import pytest

from colorize.tracking.progress import eta_minutes, grid_size, planned_trials, study_line, trial_line


def run(start_s, end_s, value=None, trial=None):
    metrics = {} if value is None else {"best_val_margin12_error": value}
    return SimpleNamespace(info=SimpleNamespace(start_time=int(start_s * 1000), end_time=int(end_s * 1000),
                                                status="FINISHED"),
                           data=SimpleNamespace(metrics=metrics, tags={"trial": str(trial)}))


@pytest.mark.parametrize("overrides,expected", [
    (["sweep=lr"], 10), (["sweep=lr", "trainer.seed=0,1,2"], 30), (["sweep=lr", "optimizer.lr=0.1,0.01"], 4),
    (["sweep=further"], 8), (["sweep=layers"], 3), (["sweep=kernels"], 6), (["sweep=kernel_size"], 4),
])
def test_trials_planned_for_the_real_presets(make_cfg, overrides, expected):
    fixed = [o for o in overrides if "," not in o]
    sweeper = make_cfg(*fixed, return_hydra_config=True).hydra.sweeper
    assert planned_trials(sweeper, overrides) == expected


def test_optuna_presets_plan_n_trials(make_cfg):
    sweeper = make_cfg("sweep=search", "hydra.sweeper.n_trials=7", return_hydra_config=True).hydra.sweeper
    assert planned_trials(sweeper, ["sweep=search"]) == 7


def test_grid_size_lets_the_command_line_replace_a_preset_axis():
    assert grid_size(["model.layers=2"], {"model.layers": "1,2,4", "+sweep/variant": "a,b"}) == 2


def test_trial_line_reports_best_so_far_and_an_eta_from_the_pace():
    finished = [run(0, 10, 0.30, 1), run(10, 20, 0.25, 2), run(20, 30, float("nan"), 3)]  # 10 s a trial
    assert eta_minutes(finished, 6) == pytest.approx(1.0)
    line = trial_line("lr", 4, 10, "2-conv k5 c8 lr0.01", finished)
    assert line == ("trial 4/10 of lr: 2-conv k5 c8 lr0.01 — best val 12-margin error 0.2500 (trial 2) — sweep 30% "
                    "— ETA 1 min")
    assert trial_line("lr", 1, 10, "x", []) == "trial 1/10 of lr: x — sweep 0%"  # no ETA before a trial ends
    assert trial_line("search", 3, None, "x", finished).startswith("trial 3 of search: x — best val 12-margin error")


def test_study_line():
    presets = ["layers", "lr", "further"]
    assert study_line(["layers", "lr"], presets, 13, 8, 600) == (
        "study: 2/3 presets done (layers, lr) in 10 min; left further — ETA 6 min")
    # presets run at once end in any order: the line keeps the study's order
    assert study_line(["further"], presets, 8, 13, 300) == (
        "study: 1/3 presets done (further) in 5 min; left layers, lr — ETA 8 min")
    assert study_line(presets, presets, 21, 0, 900) == "study: 3/3 presets done (layers, lr, further) in 15 min"
