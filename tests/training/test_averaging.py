"""The weights' EMA with warm-up, against hand-computed values and inside torch's AveragedModel."""

import pytest
import torch
from torch.optim.swa_utils import AveragedModel

from colorize.training.averaging import WeightAverage, ema_decay, ema_with_warmup


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


def test_the_host_counted_average_is_torchs_averaged_model_bit_for_bit():
    """WeightAverage keeps its update count on the host (no sync per step) and computes exactly what
    AveragedModel computes, integer buffers included; each loads the other's state dict."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4))
    reference = AveragedModel(model, multi_avg_fn=ema_with_warmup(0.99), use_buffers=True)
    ours = WeightAverage(model, 0.99)
    for _ in range(5):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model(torch.randn(2, 1, 5, 5))  # (moves BatchNorm's running stats and its batch count)
        reference.update_parameters(model)
        ours.update_parameters(model)
    want, got = reference.state_dict(), ours.state_dict()
    assert list(got) == list(want)
    for key in want:
        assert torch.equal(got[key], want[key]), key
    again = WeightAverage(model, 0.99)
    again.load_state_dict(want)
    assert again.n == 5 and torch.equal(again.module[0].weight, reference.module[0].weight)
