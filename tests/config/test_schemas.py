"""Every config group composes against its schema; bad values fail with the key named."""

import re
from importlib.resources import files

import pytest
from hydra.errors import ConfigCompositionException

from colorize import names
from colorize.config import GROUPS, to_object
from colorize.errors import ColorizeError
from colorize.paths import CONFIG_MODULE


def options(group: str) -> list[str]:
    return sorted(p.name[: -len(".yaml")] for p in (files(CONFIG_MODULE) / group).iterdir() if p.name.endswith(".yaml"))


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_every_yaml_option_has_a_schema(group):
    assert options(group), f"conf/{group} is empty"
    assert set(options(group)) <= set(GROUPS[group])


@pytest.mark.parametrize("group,option", [(g, o) for g in sorted(GROUPS) for o in options(g)])
def test_every_option_composes_into_its_dataclass(make_cfg, group, option):
    conf = to_object(make_cfg(f"{group}={option}"))
    assert isinstance(getattr(conf, group), GROUPS[group][option])


def test_defaults_are_the_course_baseline(make_cfg):
    conf = to_object(make_cfg())
    assert (conf.model.layers, conf.model.kernel_size, conf.model.channels) == (1, 3, 8)
    assert (conf.model.batch_norm, conf.model.tanh) == (False, False)
    assert (conf.optimizer.lr, conf.optimizer.momentum) == (0.001, 0.0)
    assert (conf.trainer.max_epochs, conf.trainer.batch_size) == (100, 16)
    assert (conf.trainer.early_stopping.epsilon, conf.trainer.early_stopping.patience) == (5e-6, 5)
    assert type(conf.data).__name__ == "SamplesDataConfig"
    assert conf.tracking.uri.startswith("sqlite:///")


@pytest.mark.parametrize(
    "override,message",
    [
        ("model.layers=0", "model.layers=0 is invalid: must be an integer >= 1"),
        ("model.kernel_size=4", "model.kernel_size=4 is invalid: must be an odd integer"),
        ("model.channels=0", "model.channels=0 is invalid"),
        ("optimizer.lr=-1", "optimizer.lr=-1.0 is invalid: must be a finite number > 0"),
        ("optimizer.lr=inf", "optimizer.lr=inf is invalid: must be a finite number > 0"),
        ("optimizer.lr=nan", "optimizer.lr=nan is invalid: must be a finite number > 0"),
        ("trainer.batch_size=0", "trainer.batch_size=0 is invalid: must be >= 1"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0 is invalid"),
        ("trainer.early_stopping.patience=0", "trainer.early_stopping.patience=0 is invalid"),
        ("data.limit=0", "data.limit=0 is invalid"),
        ("model=unet model.stride=3", "model.stride=3 is invalid: must be 1, 2 or 4"),
        ("scheduler=cosine scheduler.eta_min=-1", "scheduler.eta_min=-1.0 is invalid: must be >= 0"),
        ("loss=cast_split loss.blocks=[20,0]", "loss.blocks=[20, 0] is invalid: must hold block sides > 0"),
    ],
)
def test_out_of_range_values_name_the_key(make_cfg, override, message):
    with pytest.raises(ColorizeError, match=re.escape(message)):
        to_object(make_cfg(*override.split()))


@pytest.mark.parametrize(
    "override,key",
    [
        ("model.layerz=2", "model.layerz"),
        ("model.layers=two", "model.layers"),
        ("trainer.device=tpu", "trainer.device"),
        ("trainer.precision=fp16", "trainer.precision"),
        ("optimizer.lr=fast", "optimizer.lr"),
        ("nonsense=1", "nonsense"),
    ],
)
def test_unknown_keys_and_wrong_types_fail_at_composition(make_cfg, override, key):
    with pytest.raises(ConfigCompositionException) as info:
        make_cfg(override)
    assert key in str(info.value) + str(info.value.__cause__)


def test_experiment_best_composes_the_unet_recipe(make_cfg):
    conf = to_object(make_cfg("experiment=best"))
    assert type(conf.model).__name__ == "UNetConfig" and conf.model.chroma and conf.model.global_context
    assert conf.trainer.ema > 0 and conf.trainer.early_stopping.monitor == "val_margin12_error"
    assert type(conf.optimizer).__name__ == "AdamWConfig" and conf.optimizer.weight_decay > 0
    assert type(conf.loss).__name__ == "CastSplitLossConfig" and list(conf.loss.blocks) == [40, 20, 10, 5]
    assert type(conf.scheduler).__name__ == "CosineSchedulerConfig" and conf.scheduler.eta_min == 0.0
    assert type(conf.data).__name__ == "FacesDataConfig" and conf.data.limit is None  # the full splits
    # budgeted (start-up and artifacts fit in the 20th minute), precision follows the hardware
    assert 0 < conf.trainer.max_minutes < 20 and conf.trainer.early_stopping.enabled
    assert conf.trainer.precision.value == "auto"


def test_cast_split_defaults_to_the_recipes_blocks_and_can_drop_them(make_cfg):
    """Its blocks default to the four the recipe found best; `loss.blocks=[]` leaves the cast alone
    split off, and the built loss uses what the config says."""
    import torch
    from colorize.config import build
    from colorize.training.losses import cast_split

    default = make_cfg("loss=cast_split")
    assert list(to_object(default).loss.blocks) == [40, 20, 10, 5]
    bare = make_cfg("loss=cast_split", "loss.blocks=[]")
    assert list(to_object(bare).loss.blocks) == []
    pred, target = torch.rand(2, 3, 80, 80), torch.rand(2, 3, 80, 80)
    expected = float(cast_split(pred, target, blocks=[40, 20, 10, 5]))
    assert float(build(default.loss)(pred, target)) == pytest.approx(expected)
    assert float(build(bare.loss)(pred, target)) == pytest.approx(float(cast_split(pred, target)))
    assert float(cast_split(pred, target)) != pytest.approx(float(cast_split(pred, target, blocks=[40, 20, 10, 5])))


@pytest.mark.parametrize("option,schema", [("cosine", "CosineSchedulerConfig"), ("linear", "LinearSchedulerConfig"),
                                           ("plateau", "PlateauSchedulerConfig")])
def test_every_scheduler_option_builds_a_factory_of_optimizer_and_epochs(make_cfg, option, schema):
    import torch

    from colorize.config import build

    cfg = make_cfg(f"scheduler={option}")
    assert type(to_object(cfg).scheduler).__name__ == schema
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = build(cfg.scheduler)(optimizer, 5)
    assert isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler)


def test_each_yaml_option_is_the_schema_it_names_and_the_root_nests_the_trainer(make_cfg):
    """conf/<group>/<option>.yaml says which dataclass holds its defaults: that is the one it composes into."""
    from colorize.config.data import FacesDataConfig, SamplesDataConfig
    from colorize.config.loss import (CastSplitLossConfig, CharbonnierLossConfig, L1LossConfig, MarginLossConfig,
                                      MseLossConfig)
    from colorize.config.model import ConvNetConfig, UNetConfig
    from colorize.config.optimizer import AdamConfig, AdamWConfig, SGDConfig
    from colorize.config.pruner import HyperbandPrunerConfig, MedianPrunerConfig, NoPrunerConfig
    from colorize.config.root import TrainConfig
    from colorize.config.scheduler import (CosineSchedulerConfig, LinearSchedulerConfig, NoSchedulerConfig,
                                           PlateauSchedulerConfig)
    from colorize.config.tracking import MlflowConfig
    from colorize.config.trainer import CudaGraphs, Device, EarlyStoppingConfig, Precision, TrainerConfig

    named = {
        "model": {"baseline": ConvNetConfig, "unet": UNetConfig},
        "optimizer": {"sgd": SGDConfig, "adam": AdamConfig, "adamw": AdamWConfig},
        "loss": {"mse": MseLossConfig, "l1": L1LossConfig, "charbonnier": CharbonnierLossConfig,
                 "cast_split": CastSplitLossConfig, "margin": MarginLossConfig},
        "scheduler": {"none": NoSchedulerConfig, "plateau": PlateauSchedulerConfig, "cosine": CosineSchedulerConfig,
                      "linear": LinearSchedulerConfig},
        "data": {"samples": SamplesDataConfig, "faces": FacesDataConfig},
        "pruner": {"none": NoPrunerConfig, "median": MedianPrunerConfig, "hyperband": HyperbandPrunerConfig},
        "tracking": {"mlflow": MlflowConfig}, "trainer": {"default": TrainerConfig},
    }
    for group, schemas in named.items():
        for option, schema in schemas.items():
            assert schema.__name__ in (files(CONFIG_MODULE) / group / f"{option}.yaml").read_text(), (group, option)
            assert type(getattr(to_object(make_cfg(f"{group}={option}")), group)) is schema, (group, option)
    conf = to_object(make_cfg())
    assert isinstance(conf, TrainConfig) and isinstance(conf.trainer.early_stopping, EarlyStoppingConfig)
    assert getattr(conf, names.TRIAL_KEY) is None  # the sweeper's key is the schema's field
    assert (conf.trainer.device, conf.trainer.precision, conf.trainer.cuda_graphs) == (
        Device.auto, Precision.fp32, CudaGraphs.auto)


def test_a_checked_schema_names_its_key_from_its_group_and_field():
    from dataclasses import dataclass

    from colorize.config.checks import Checked

    @dataclass
    class Probe(Checked):
        GROUP = "trainer.early_stopping"
        patience: int = 0

        def __post_init__(self):
            self.require(self.patience >= 1, "patience", "must be >= 1")

    with pytest.raises(ColorizeError, match=r"^trainer\.early_stopping\.patience=0 is invalid: must be >= 1$"):
        Probe()
