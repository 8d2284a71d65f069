"""From a composed config to objects: validation into the schemas, plain values, and `build`."""

from __future__ import annotations

from typing import Any, cast

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from colorize.config.root import GROUPS, TrainConfig
from colorize.errors import ColorizeError

# Targets a config may name: this package's builders, torch's optimizers, Optuna's pruners. Anything else in a
# `_target_` is refused by Hydra (no arbitrary callables from a config file or override).
TRUSTED_TARGETS = ["colorize.*", "torch.optim.*", "optuna.pruners.*"]


def as_dict(cfg: Any, **options: Any) -> dict[str, Any]:
    """`OmegaConf.to_container(cfg, **options)` of a mapping (a config's keys are strings)."""
    container = OmegaConf.to_container(cfg, **options)
    if not isinstance(container, dict):
        raise TypeError(f"a mapping config was expected, got {type(container).__name__}")
    return cast(dict[str, Any], container)


def plain(cfg: Any) -> dict[str, Any]:
    """A composed config as plain, resolved Python values (enums as strings): for checkpoints, params."""
    return as_dict(cfg, resolve=True, enum_to_str=True)


def to_object(cfg: DictConfig) -> TrainConfig:
    """Validate a composed config and return it as dataclasses; bad values raise ColorizeError."""
    try:
        return OmegaConf.to_object(cfg)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, ColorizeError):
            raise cause from None
        raise ColorizeError(str(exc).splitlines()[0]) from None


def model_of(option: str, **values: Any) -> Any:
    """A model of the `model` group's `option` (baseline | unet): its schema's defaults, then `values`,
    range-checked as a config would be (for code and tests that build a model without Hydra)."""
    schema = GROUPS["model"][option](**values)
    return build(OmegaConf.structured(schema))


def build(node: Any, *args: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` restricted to :data:`TRUSTED_TARGETS`."""
    from hydra.utils import instantiate

    return instantiate(node, *args, _execution_whitelist_=TRUSTED_TARGETS, **kwargs)
