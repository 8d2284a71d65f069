"""The weights' EMA with warm-up, against hand-computed values and inside torch's AveragedModel."""

import pytest
import torch
from torch.optim.swa_utils import AveragedModel

from colorize.training.averaging import ema_decay, ema_with_warmup


@pytest.mark.parametrize("decay,updates,expected", [
    (0.998, 0, 0.1),        # (1 + 0) / (10 + 0)
    (0.998, 1, 2 / 11),
    (0.998, 90, 0.91),      # 91 / 100
    (0.9, 90, 0.9),         # capped by the decay itself
    (0.998, 10_000, 0.998),
])
def test_decay_warms_up_to_the_configured_value(decay, updates, expected):
    assert ema_decay(decay, updates) == pytest.approx(expected)


def test_averaged_model_follows_the_hand_computed_average():
    model = torch.nn.Linear(1, 1, bias=False)
    ema = AveragedModel(model, multi_avg_fn=ema_with_warmup(0.5), use_buffers=True)
    values = [1.0, 3.0, 7.0]
    for v in values:
        with torch.no_grad():
            model.weight.fill_(v)
        ema.update_parameters(model)
    # update 1 copies (1.0); update 2: d = min(0.5, 2/11) -> 1·2/11 + 3·9/11; update 3: d = min(0.5, 3/12)
    second = 1.0 * 2 / 11 + 3.0 * 9 / 11
    third = second * 0.25 + 7.0 * 0.75
    assert ema.module.weight.item() == pytest.approx(third)


def test_integer_buffers_are_averaged_too():
    model = torch.nn.BatchNorm1d(2)
    ema = AveragedModel(model, multi_avg_fn=ema_with_warmup(0.9), use_buffers=True)
    ema.update_parameters(model)
    model.num_batches_tracked.fill_(100)
    ema.update_parameters(model)  # d = min(0.9, 2/11): 0·2/11 + 100·9/11 = 81.8 -> 81 (integer)
    assert ema.module.num_batches_tracked.item() == 81
