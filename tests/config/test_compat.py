"""Every backward-compatibility rule (colorize/config/compat.py): what earlier versions saved still loads."""

import pytest

from colorize.config import saved_model, typed
from colorize.config.loss import MseLossConfig
from colorize.errors import ColorizeError


def test_a_unet_saved_before_global_context_gets_it_at_its_default():
    old = {"_target_": "colorize.models.unet.UNet", "depth": 2, "channels": 4, "batch_norm": True, "chroma": True,
           "stride": 1}
    assert saved_model(old) == {**old, "global_context": False}
    assert saved_model({**old, "global_context": True})["global_context"] is True  # what was saved wins


def test_a_saved_config_loads_under_todays_targets_and_groups():
    cfg = typed({"scheduler": {"_target_": "colorize.schedules.cosine", "_partial_": True, "eta_min": 0.0},
                 "optimizer": {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1}})
    assert cfg.scheduler._target_ == "colorize.training.schedules.cosine"  # renamed when grouped by layer
    assert cfg.loss._target_ == MseLossConfig._target_  # saved before the loss group: it trained on the MSE
    assert cfg.optimizer.lr == 0.1 and cfg.optimizer.momentum == 0.0


def test_an_unknown_saved_target_is_one_clear_error():
    with pytest.raises(ColorizeError, match="saved optimizer config names an unknown _target_ 'my.Optimizer'"):
        typed({"optimizer": {"_target_": "my.Optimizer", "lr": 0.1}})
