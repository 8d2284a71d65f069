"""Hydra registration (colorize/config/registry.py): schemas, sweep presets and their packages,
colorize's launcher and sweeper configs."""

import pytest

from colorize.config.registry import package_header


@pytest.mark.parametrize("text,package", [
    ("# @package _global_\ndefaults: []\n", "_global_"),
    ("# @package hydra.sweeper\n# what the preset sets\nx: 1\n", "hydra.sweeper"),
    ("x: 1\n", None),
])
def test_the_package_header_is_read_as_hydra_reads_it(text, package):
    """The one call of Hydra's private header parser: if Hydra changes it, this fails here first."""
    assert package_header(text) == package


def test_presets_compose_at_the_package_they_name(make_cfg):
    cfg = make_cfg("sweep=lr", return_hydra_config=True)  # sweeps/lr.yaml: # @package _global_
    assert "optimizer.lr" in cfg.hydra.sweeper.params and str(cfg.hydra.sweep.dir).startswith("outputs/multirun/lr/")


def test_colorizes_launcher_and_sweeper_are_hydra_options(make_cfg):
    from colorize.launch.fused_launcher import FusedLauncherConf
    from colorize.search.sweeper import ColorizeOptunaSweeperConf

    hydra = make_cfg("hydra/launcher=fused", "hydra/sweeper=colorize_optuna", return_hydra_config=True).hydra
    assert hydra.launcher._target_ == FusedLauncherConf._target_ and hydra.launcher.max_group is None  # auto
    assert hydra.sweeper._target_ == ColorizeOptunaSweeperConf._target_
