"""Conditional parts of the `search` preset's Optuna space (Hydra's `custom_search_space` hook).

Hydra's declarative sweeper params cannot express "these keys only for that model", so the choice
of model family and each family's own architecture keys are suggested here; the keys every family
shares (lr, optimizer, batch norm, channels) stay declarative in sweeps/search.yaml.
"""

from __future__ import annotations

from omegaconf import DictConfig
from optuna.trial import Trial


def architecture(cfg: DictConfig, trial: Trial) -> None:
    """Suggest the model family, then that family's architecture keys (as Hydra overrides)."""
    family = trial.suggest_categorical("model", ["baseline", "unet"])
    if family == "baseline":
        trial.suggest_categorical("model.layers", [1, 2, 3, 4])
        trial.suggest_categorical("model.kernel_size", [3, 5, 7])
        trial.suggest_categorical("model.tanh", [False, True])
    else:
        trial.suggest_categorical("model.depth", [2, 3])
