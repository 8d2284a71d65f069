"""Structured configs: one dataclass per Hydra config group option, one module per group.

Types and unknown keys are checked by OmegaConf when Hydra composes the config; value ranges are
checked in ``__post_init__``, which runs when :func:`to_object` turns the composed config into
these dataclasses (before any data is read or any run is tracked).

    checks.py      Checked: the range checks' one error format (key from group and field)
    model.py, optimizer.py, loss.py, scheduler.py, data.py, trainer.py, tracking.py, pruner.py
                   each group's schemas (the one place defaults live)
    root.py        TrainConfig (conf/train.yaml) and GROUPS, the registry of every option
    registry.py    Hydra registration: ConfigStore, the sweep presets, the resolvers
    compat.py      every backward-compatibility rule for saved configs and checkpoints
    build.py       to_object, plain, build (instantiate, restricted to TRUSTED_TARGETS), model_of
    compose.py     the commands' composition: overrides split as Hydra does, the train config composed,
                   a failed composition in one line, colorize-train's command line checked before Hydra runs
"""

from colorize.config.build import TRUSTED_TARGETS, build, model_of, plain, to_object
from colorize.config.compat import saved_model, typed
from colorize.config.registry import register_configs
from colorize.config.root import GROUPS, TrainConfig
from colorize.config.data import SamplesDataConfig

__all__ = ["GROUPS", "TRUSTED_TARGETS", "SamplesDataConfig", "TrainConfig", "build", "model_of", "plain",
           "register_configs", "saved_model", "to_object", "typed"]
