"""Every backward-compatibility rule for what colorize wrote earlier (checkpoints' and runs' saved
configs), in this one place: targets renamed when the package was grouped by layer, groups and
model keys added since. Reading an old config applies them; nothing else needs to know."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from colorize.config.build import as_dict
from colorize.config.loss import MseLossConfig
from colorize.config.root import GROUPS, TrainConfig
from colorize.errors import ColorizeError

# Targets renamed since a checkpoint may have been written (the package grouped by layer)
MOVED_TARGETS = {"colorize.schedules.": "colorize.training.schedules."}

# Groups added since a checkpoint may have been written, with the option such a run used
ADDED_GROUPS: dict[str, type] = {"loss": MseLossConfig}  # before the group, every run trained on the MSE


def moved(target: Any) -> Any:
    """A saved `_target_` under its current name."""
    for old, new in MOVED_TARGETS.items():
        if isinstance(target, str) and target.startswith(old):
            return new + target[len(old):]
    return target


def schema_of(group: str, saved: dict) -> type | None:
    """The schema of a saved group config: the option with its `_target_` (or the group's only one)."""
    options = GROUPS[group]
    schema = next((c for c in options.values() if getattr(c, "_target_", None) == saved.get("_target_")), None)
    return schema if schema is not None or len(options) > 1 else next(iter(options.values()))


def saved_model(model_config: dict) -> dict:
    """A checkpoint's model config with the keys added since it was saved, at their defaults (a U-Net
    saved before `global_context` existed was built without it: the default, off)."""
    saved = {**model_config, "_target_": moved(model_config.get("_target_"))}
    schema = schema_of("model", saved)
    if schema is None:
        return saved
    return as_dict(OmegaConf.merge(OmegaConf.structured(schema), saved), enum_to_str=True)


def typed(container: dict) -> DictConfig:
    """A saved (plain) config back under its schemas: each group's dataclass found by `_target_`."""
    root = OmegaConf.structured(TrainConfig)
    for group in GROUPS:
        saved = container.get(group)
        if not isinstance(saved, dict):
            continue
        saved = {**saved, "_target_": moved(saved.get("_target_"))} if "_target_" in saved else saved
        schema = schema_of(group, saved)
        if schema is None:
            raise ColorizeError(f"saved {group} config names an unknown _target_ {saved.get('_target_')!r}")
        root[group] = OmegaConf.merge(OmegaConf.structured(schema), saved)
    for key, value in container.items():
        if key not in GROUPS:
            root[key] = value
    for group, schema in ADDED_GROUPS.items():  # a config saved before the group existed ran its default
        if group not in container:
            root[group] = OmegaConf.structured(schema)
    return root
