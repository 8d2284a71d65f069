"""Hydra registration: every group's schemas in Hydra's ConfigStore, the sweep presets of sweeps/
as the group `sweep`, and colorize's resolvers."""

from __future__ import annotations

import io
import sys
from importlib.resources import files
from typing import TYPE_CHECKING

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from colorize.config.root import GROUPS, TrainConfig
from colorize.cores import parallel_jobs
from colorize.folders import register_resolver as register_unique_resolver
from colorize.paths import PRESETS_MODULE, default_store_uri

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:  # Python 3.10's home of it
        from importlib.abc import Traversable


def register_configs() -> None:
    """Put the schemas in Hydra's ConfigStore as `<group>/<option>_schema` and `train_schema`, the
    presets of sweeps/ as the group `sweep`, and register the `colorize.parallel_jobs` resolver the
    sweep presets use.

    The YAML files under `conf/` name their schema first in their defaults list.
    """
    OmegaConf.register_resolver("colorize.parallel_jobs", parallel_jobs, replace=True)
    OmegaConf.register_resolver("colorize.default_store", default_store_uri, replace=True)
    register_unique_resolver()  # ${colorize.unique:}: the run and sweep folders' random suffix
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig, replace=True)
    for group, options in GROUPS.items():
        for option, node in options.items():
            cs.store(group=group, name=f"{option}_schema", node=node, replace=True)
    register_presets(cs)


def package_header(text: str) -> str | None:
    """The package a YAML file's ``# @package`` header names (None without one).

    Hydra parses the header with a private helper, `ConfigSource._get_header_dict`; this is the one
    place colorize calls it (tests/config/test_schemas.py checks it still parses as Hydra documents)."""
    from hydra.plugins.config_source import ConfigSource

    return ConfigSource._get_header_dict(text).get("package")


def register_presets(cs: ConfigStore, module: str = PRESETS_MODULE) -> None:
    """The YAML presets of the package `module` (sweeps/) as the config group `sweep` (subfolders as
    `sweep/<folder>`), each with the package its `# @package` header names.

    Why not a folder in conf/: sweeps/ is a top-level folder of the project, and a symlink conf/sweep
    breaks on Windows checkouts; a second search path cannot rename a folder into a group.
    """

    def walk(folder: Traversable, group: str) -> None:
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.is_dir() and not entry.name.startswith(("_", ".")):
                walk(entry, f"{group}/{entry.name}")
            elif entry.name.endswith(".yaml"):
                text = entry.read_text(encoding="utf-8")
                node = OmegaConf.load(io.StringIO(text))
                cs.store(group=group, name=entry.name[: -len(".yaml")], node=node, package=package_header(text),
                         replace=True)

    walk(files(module), "sweep")
