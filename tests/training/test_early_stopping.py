"""Early stopping on scripted val-loss sequences."""

import pytest

from colorize.training.early_stopping import EarlyStopping


def run(losses, epsilon=5e-6, patience=5):
    stopper = EarlyStopping(epsilon=epsilon, patience=patience)
    for epoch, loss in enumerate(losses, start=1):
        stopper.step(epoch, loss)
        if stopper.should_stop:
            return stopper, epoch
    return stopper, len(losses)


def test_stops_after_patience_epochs_without_improvement_and_keeps_the_best():
    stopper, stopped = run([1.0, 0.8, 0.7, 0.75, 0.71, 0.72, 0.73, 0.74, 0.5], patience=5)
    assert (stopper.best_epoch, stopper.best_loss, stopped) == (3, 0.7, 8)


def test_improvements_smaller_than_epsilon_do_not_count():
    stopper, stopped = run([1.0, 1.0 - 4e-6, 1.0 - 8e-6, 1.0 - 9e-6], epsilon=5e-6, patience=2)
    # epoch 2 improves by 4e-6 < eps; epoch 3 by 8e-6 > eps over the best (epoch 1)
    assert (stopper.best_epoch, stopped) == (3, 4)
    assert stopper.bad_epochs == 1


def test_never_stops_while_improving():
    stopper, stopped = run([1.0 / n for n in range(1, 21)], patience=2)
    assert (stopper.best_epoch, stopped, stopper.should_stop) == (20, 20, False)


def test_patience_counter_resets_on_improvement():
    stopper, stopped = run([1.0, 1.1, 1.2, 0.9, 1.0, 1.1, 1.2], patience=3)
    assert (stopper.best_epoch, stopped) == (4, 7)


def test_state_round_trips():
    stopper, _ = run([1.0, 0.5, 0.6])
    restored = EarlyStopping()
    restored.load_state_dict(stopper.state_dict())
    assert restored == stopper


def test_nan_never_improves():
    stopper, _ = run([1.0, float("nan")], patience=1)
    assert stopper.best_epoch == 1 and stopper.should_stop
    assert stopper.best_loss == pytest.approx(1.0)
