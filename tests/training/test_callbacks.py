"""Checkpoint and ConsoleLog (colorize/training/callbacks.py)."""

import logging
from pathlib import Path
from types import SimpleNamespace

import torch
from omegaconf import OmegaConf

from colorize import names
from colorize.config import model_of
from colorize.training.callback import CallbackContext, TrainState
from colorize.training.callbacks import Checkpoint, ConsoleLog
from colorize.training.checkpoint import LAST, load_model, read_checkpoint

CFG = OmegaConf.create({"model": {"_target_": "colorize.models.convnet.ConvNet", "layers": 2, "kernel_size": 3,
                                  "channels": 4, "batch_norm": False, "tanh": False},
                        "trainer": {"max_epochs": 24, "max_minutes": 1.5}})
METRICS = {names.TRAIN_MSE: 0.01234, names.VAL_MSE: 0.02345, names.VAL_ACCURACY: 0.61234, names.EPOCH_SECONDS: 5.06}


def test_every_epoch_leaves_a_last_pt_that_resumes_the_run(tmp_path):
    model = model_of("baseline", layers=2, kernel_size=3, channels=4)
    callback = Checkpoint()
    callback.setup(CallbackContext(run=SimpleNamespace(run_id="r1"), model=model, cfg=CFG, output_dir=tmp_path))
    state = TrainState(epoch=3, model=model.state_dict(), optimizer={}, generator=torch.Generator().get_state(),
                       best_model=model.state_dict(), history=[METRICS] * 3)
    callback.on_epoch_end(3, METRICS, state)
    saved = read_checkpoint(tmp_path / LAST)
    assert saved["run_id"] == "r1" and saved["train_state"]["epoch"] == 3
    assert saved["config"]["trainer"]["max_epochs"] == 24
    rebuilt, _ = load_model(tmp_path / LAST)
    for a, b in zip(rebuilt.parameters(), model.parameters()):
        assert torch.equal(a, b)


def test_the_console_says_one_line_per_epoch_and_names_a_fused_trial(caplog):
    caplog.set_level(logging.INFO, logger="colorize")
    alone, fused = ConsoleLog(), ConsoleLog()
    alone.setup(CallbackContext(run=None, model=None, cfg=CFG, output_dir=Path(".")))
    fused.setup(CallbackContext(run=None, model=None, cfg=CFG, output_dir=Path("."),
                                label="trial 3 (2-conv k3 c4 lr0.1)"))
    alone.on_plan(9, measured=True)
    alone.on_epoch_end(2, METRICS, state=None)
    fused.on_epoch_end(2, METRICS, state=None)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "1.5 min budget: 9 epochs fit at the first epoch's pace (replay with trainer.max_epochs=9)",
        "epoch   2/9  train_mse 0.01234  val_mse 0.02345  val_acc12 0.6123  (5.1s)",
        "trial 3 (2-conv k3 c4 lr0.1): epoch   2/24  train_mse 0.01234  val_mse 0.02345  val_acc12 0.6123  (5.1s)",
    ]
