"""Structured configs: one dataclass per Hydra config group option.

Types and unknown keys are checked by OmegaConf when Hydra composes the config; value ranges are
checked in ``__post_init__``, which runs when :func:`to_object` turns the composed config into
these dataclasses (before any data is read or any run is tracked).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from enum import Enum
from importlib.resources import files
from typing import TYPE_CHECKING, Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from colorize import names
from colorize.errors import ColorizeError, invalid
from colorize.folders import register_resolver as register_unique_resolver
from colorize.paths import PRESETS_MODULE, default_store_uri

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable


def _require(ok: bool, key: str, value: object, allowed: str) -> None:
    if not ok:
        raise invalid(key, value, allowed)


# ----------------------------------------------------------------------------- model
@dataclass
class ConvNetConfig:
    """The study's plain conv net: `layers` convs, ReLU between, optional BN and final tanh."""

    _target_: str = "colorize.models.convnet.ConvNet"
    layers: int = 1
    kernel_size: int = 3
    channels: int = 8
    batch_norm: bool = False
    tanh: bool = False

    def __post_init__(self) -> None:
        _require(self.layers >= 1, "model.layers", self.layers, "must be an integer >= 1")
        _require(
            self.kernel_size >= 1 and self.kernel_size % 2 == 1,
            "model.kernel_size",
            self.kernel_size,
            "must be an odd integer >= 1 (same padding keeps the image size)",
        )
        _require(self.channels >= 1, "model.channels", self.channels, "must be an integer >= 1")


@dataclass
class UNetConfig:
    """A small U-Net (skip connections) that predicts chroma and keeps the input luma."""

    _target_: str = "colorize.models.unet.UNet"
    depth: int = 3  # 2x down-samplings (80 -> 10 pixels at depth 3)
    channels: int = 16  # kernels at full resolution, doubled at every level
    batch_norm: bool = True
    chroma: bool = True  # predict Cb/Cr and recombine with the input luma (else RGB directly)
    stride: int = 1  # 2 / 4: work at 1/2 or 1/4 resolution (pixel-unshuffle in, pixel-shuffle out)
    global_context: bool = False  # add the image's mean bottleneck features (through an MLP) everywhere

    def __post_init__(self) -> None:
        _require(1 <= self.depth <= 4, "model.depth", self.depth, "must be 1..4 (80x80 images halve per level)")
        _require(self.channels >= 1, "model.channels", self.channels, "must be an integer >= 1")
        _require(self.stride in (1, 2, 4), "model.stride", self.stride, "must be 1, 2 or 4")


# ----------------------------------------------------------------------------- optimizer
def _check_lr_and_decay(lr: float, weight_decay: float) -> None:
    _require(math.isfinite(lr) and lr > 0, "optimizer.lr", lr, "must be a finite number > 0")
    _require(weight_decay >= 0, "optimizer.weight_decay", weight_decay, "must be >= 0")


def _check_limit(limit: Optional[int]) -> None:
    _require(limit is None or limit >= 1, "data.limit", limit, "must be null or >= 1")


@dataclass
class SGDConfig:
    _target_: str = "torch.optim.SGD"
    _partial_: bool = True
    lr: float = 0.001
    momentum: float = 0.0
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        _check_lr_and_decay(self.lr, self.weight_decay)
        _require(0 <= self.momentum < 1, "optimizer.momentum", self.momentum, "must be in [0, 1)")


@dataclass
class AdamConfig:
    _target_: str = "torch.optim.Adam"
    _partial_: bool = True
    lr: float = 0.001
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        _check_lr_and_decay(self.lr, self.weight_decay)


@dataclass
class AdamWConfig:
    """Adam with decoupled weight decay (torch.optim.AdamW): regularisation for a small dataset."""

    _target_: str = "torch.optim.AdamW"
    _partial_: bool = True
    lr: float = 0.001
    weight_decay: float = 0.01

    def __post_init__(self) -> None:
        _check_lr_and_decay(self.lr, self.weight_decay)


# ----------------------------------------------------------------------------- loss
@dataclass
class MseLossConfig:
    """Mean squared error: the study's loss (it pulls each value to the conditional mean)."""

    _target_: str = "colorize.training.losses.mse"
    _partial_: bool = True


@dataclass
class L1LossConfig:
    """Mean absolute error (the conditional median)."""

    _target_: str = "colorize.training.losses.l1"
    _partial_: bool = True


@dataclass
class CharbonnierLossConfig:
    """Mean of sqrt(e^2 + epsilon^2): a smooth L1."""

    _target_: str = "colorize.training.losses.charbonnier"
    _partial_: bool = True
    epsilon: float = 1e-3

    def __post_init__(self) -> None:
        _require(self.epsilon > 0, "loss.epsilon", self.epsilon, "must be > 0")


@dataclass
class CastSplitLossConfig:
    """Charbonnier on each image's local error + cast_weight x Charbonnier on its mean error (cast),
    and on each b x b block's mean error less the coarser one's, for b in blocks."""

    _target_: str = "colorize.training.losses.cast_split"
    _partial_: bool = True
    epsilon: float = 1e-3
    cast_weight: float = 1.0
    # block sides whose mean errors are split off too ([] for the cast alone); these four gave the
    # recipe's best figures (README, "A stronger model")
    blocks: list[int] = field(default_factory=lambda: [40, 20, 10, 5])

    def __post_init__(self) -> None:
        _require(self.epsilon > 0, "loss.epsilon", self.epsilon, "must be > 0")
        _require(self.cast_weight >= 0, "loss.cast_weight", self.cast_weight, "must be >= 0")
        for side in self.blocks:
            _require(side > 0, "loss.blocks", list(self.blocks), "must hold block sides > 0")


@dataclass
class MarginLossConfig:
    """A smooth 12-margin error: mean of 1 - exp(-(e/sigma)^2), plus mse_weight x MSE."""

    _target_: str = "colorize.training.losses.margin"
    _partial_: bool = True
    sigma: float = 12 / 127.5  # the metric's margin in [-1, 1] units
    mse_weight: float = 0.0

    def __post_init__(self) -> None:
        _require(self.sigma > 0, "loss.sigma", self.sigma, "must be > 0")
        _require(self.mse_weight >= 0, "loss.mse_weight", self.mse_weight, "must be >= 0")


# ----------------------------------------------------------------------------- scheduler
@dataclass
class NoSchedulerConfig:
    """A constant learning rate (the study's setting)."""


@dataclass
class PlateauSchedulerConfig:
    """Multiply the learning rate by `factor` when val MSE has not improved for `patience` epochs."""

    _target_: str = "colorize.training.schedules.plateau"
    _partial_: bool = True
    factor: float = 0.5
    patience: int = 1
    threshold: float = 1e-4

    def __post_init__(self) -> None:
        _require(0 < self.factor < 1, "scheduler.factor", self.factor, "must be in (0, 1)")
        _require(self.patience >= 0, "scheduler.patience", self.patience, "must be >= 0")


@dataclass
class CosineSchedulerConfig:
    """Anneal the lr along a half cosine from `optimizer.lr` (epoch 1) to `eta_min` (the run's last
    epoch): over `trainer.max_epochs`, or the epochs that fit `trainer.max_minutes`."""

    _target_: str = "colorize.training.schedules.cosine"
    _partial_: bool = True
    eta_min: float = 0.0

    def __post_init__(self) -> None:
        _require(self.eta_min >= 0, "scheduler.eta_min", self.eta_min, "must be >= 0")


@dataclass
class LinearSchedulerConfig(CosineSchedulerConfig):
    """Decay the lr in a straight line from `optimizer.lr` (epoch 1) to `eta_min` (the last epoch)."""

    _target_: str = "colorize.training.schedules.linear"


# ----------------------------------------------------------------------------- data
@dataclass
class SamplesDataConfig:
    """80x80 tiles of the colour photographs bundled with scikit-image (no download)."""

    _target_: str = "colorize.data.samples.load_samples"
    tile: int = 80
    val_every: int = 5  # every n-th tile goes to the validation split
    limit: Optional[int] = None

    def __post_init__(self) -> None:
        _require(self.tile >= 8, "data.tile", self.tile, "must be an integer >= 8")
        _require(self.val_every >= 2, "data.val_every", self.val_every, "must be an integer >= 2")
        _check_limit(self.limit)


@dataclass
class FacesDataConfig:
    """The course layout ROOT/{train,val,test}/images/*.jpg."""

    _target_: str = "colorize.data.faces.load_faces"
    # null: $COLORIZE_FACES_ROOT, else ../shared/data/ceng483-hw3-dataset beside the project
    root: Optional[str] = None
    limit: Optional[int] = None  # at most this many images per split (sorted by name)

    def __post_init__(self) -> None:
        _check_limit(self.limit)


# ----------------------------------------------------------------------------- trainer
class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Precision(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"  # bfloat16 autocast for forward passes; weights, loss and optimizer stay float32
    auto = "auto"  # bf16 where the device computes it natively, else fp32 (colorize/training/precision.py)


class CudaGraphs(str, Enum):
    auto = "auto"  # on for CUDA with fp32 (eager if the capture fails), off elsewhere
    on = "on"  # capture, or fail in one line where it cannot apply
    off = "off"


MONITORED = (names.VAL_MSE, names.VAL_ERROR, names.VAL_ACCURACY)


@dataclass
class EarlyStoppingConfig:
    enabled: bool = True
    epsilon: float = 5e-6  # the monitored value must improve by more than this to count
    patience: int = 5  # epochs without improvement before stopping
    monitor: str = names.VAL_MSE  # the val metric watched: val_mse | val_margin12_error | val_margin12_accuracy
    mode: str = "min"  # min: lower is better; max: higher is better

    def __post_init__(self) -> None:
        _require(self.monitor in MONITORED, "trainer.early_stopping.monitor", self.monitor,
                 "must be one of " + ", ".join(MONITORED))
        _require(self.mode in ("min", "max"), "trainer.early_stopping.mode", self.mode, "must be min or max")
        _require(self.epsilon >= 0, "trainer.early_stopping.epsilon", self.epsilon, "must be >= 0")
        _require(
            self.patience >= 1, "trainer.early_stopping.patience", self.patience, "must be >= 1"
        )


@dataclass
class TrainerConfig:
    max_epochs: int = 100
    batch_size: int = 16
    seed: int = 0
    device: Device = Device.auto
    num_threads: int = 0  # 0: the cores available to this job (divided among parallel jobs)
    eval_batch_size: int = 500
    num_samples: int = 6  # val images in the qualitative figure
    resume: Optional[str] = None  # an interrupted run's id, or its last.pt: continue that run
    # time budget for training (0: none): the first epoch's pace fixes how many epochs N fit in it
    # (at most max_epochs), and the lr schedule spans those N epochs
    max_minutes: float = 0.0
    hflip: bool = False  # augmentation: mirror a random half of every training batch left-right
    shift: int = 0  # augmentation: translate each training image by up to this many pixels (reflection fills)
    ema: float = 0.0  # decay of an exponential moving average of the weights (0: off; e.g. 0.999): it validates and is saved
    precision: Precision = Precision.fp32
    # benchmarks and debugging: wait on the device after every step, as the loop did before it kept
    # its sums on the device (same numbers, slower on a GPU)
    sync_every_step: bool = False
    # replay the model's forward and backward as a CUDA graph (colorize/training/graphs.py)
    cuda_graphs: CudaGraphs = CudaGraphs.auto
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)

    def __post_init__(self) -> None:
        _require(self.max_epochs >= 1, "trainer.max_epochs", self.max_epochs, "must be >= 1")
        _require(self.batch_size >= 1, "trainer.batch_size", self.batch_size, "must be >= 1")
        _require(self.num_threads >= 0, "trainer.num_threads", self.num_threads, "must be >= 0")
        _require(
            self.eval_batch_size >= 1, "trainer.eval_batch_size", self.eval_batch_size, "must be >= 1"
        )
        _require(self.num_samples >= 1, "trainer.num_samples", self.num_samples, "must be >= 1")
        _require(self.max_minutes >= 0, "trainer.max_minutes", self.max_minutes, "must be >= 0 (0: no limit)")
        _require(0 <= self.shift <= 8, "trainer.shift", self.shift, "must be 0..8 pixels")
        _require(0 <= self.ema < 1, "trainer.ema", self.ema, "must be in [0, 1) (0: off)")


# ----------------------------------------------------------------------------- tracking
@dataclass
class MlflowConfig:
    # $MLFLOW_TRACKING_URI, else ./mlflow.db (what a plain `mlflow ui` opens): colorize.paths.default_store_uri,
    # the one rule every command uses. Relative sqlite paths are resolved against the command's folder.
    uri: str = "${colorize.default_store:}"
    experiment: str = "colorize"
    # null: an `mlartifacts` folder beside a sqlite store (MLflow's server default otherwise)
    artifact_location: Optional[str] = None
    run_name: Optional[str] = None  # null: derived from the model, e.g. "2-conv k5 c16 +tanh"


# ----------------------------------------------------------------------------- pruner
@dataclass
class NoPrunerConfig:
    _target_: str = "optuna.pruners.NopPruner"


@dataclass
class MedianPrunerConfig:
    """Prune a trial whose val error at an epoch is worse than the median of earlier trials'."""

    _target_: str = "optuna.pruners.MedianPruner"
    n_startup_trials: int = 3  # trials that complete before any pruning
    n_warmup_steps: int = 1  # epochs of every trial that are never pruned
    interval_steps: int = 1


@dataclass
class HyperbandPrunerConfig:
    _target_: str = "optuna.pruners.HyperbandPruner"
    min_resource: int = 1
    max_resource: Any = "auto"
    reduction_factor: int = 3


# ----------------------------------------------------------------------------- root
@dataclass
class TrainConfig:
    model: Any = MISSING
    optimizer: Any = MISSING
    loss: Any = MISSING
    data: Any = MISSING
    trainer: TrainerConfig = MISSING
    tracking: MlflowConfig = MISSING
    scheduler: Any = MISSING
    # Optuna pruner for trials of the `search` sweep (only used when `optuna_trial` is set)
    pruner: Any = MISSING
    # set by the colorize_optuna sweeper: the Optuna trial number this job evaluates
    optuna_trial: Optional[int] = None
    # what watches training (colorize.training.loop.Callback), name -> {_target_: ...}, in order
    callbacks: dict[str, Any] = field(default_factory=dict)


GROUPS: dict[str, dict[str, type]] = {
    "model": {"baseline": ConvNetConfig, "unet": UNetConfig},
    "optimizer": {"sgd": SGDConfig, "adam": AdamConfig, "adamw": AdamWConfig},
    "loss": {"mse": MseLossConfig, "l1": L1LossConfig, "charbonnier": CharbonnierLossConfig,
             "cast_split": CastSplitLossConfig, "margin": MarginLossConfig},
    "data": {"samples": SamplesDataConfig, "faces": FacesDataConfig},
    "trainer": {"default": TrainerConfig},
    "tracking": {"mlflow": MlflowConfig},
    "scheduler": {
        "none": NoSchedulerConfig, "plateau": PlateauSchedulerConfig,
        "cosine": CosineSchedulerConfig, "linear": LinearSchedulerConfig,
    },
    "pruner": {"none": NoPrunerConfig, "median": MedianPrunerConfig, "hyperband": HyperbandPrunerConfig},
}


def register_configs() -> None:
    """Put the schemas in Hydra's ConfigStore as `<group>/<option>_schema` and `train_schema`, the
    presets of sweeps/ as the group `sweep`, and register the `colorize.parallel_jobs` resolver the
    sweep presets use.

    The YAML files under `conf/` name their schema first in their defaults list.
    """
    from colorize.training.runtime import parallel_jobs

    OmegaConf.register_resolver("colorize.parallel_jobs", parallel_jobs, replace=True)
    OmegaConf.register_resolver("colorize.default_store", default_store_uri, replace=True)
    register_unique_resolver()  # ${colorize.unique:}: the run and sweep folders' random suffix
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig, replace=True)
    for group, options in GROUPS.items():
        for option, node in options.items():
            cs.store(group=group, name=f"{option}_schema", node=node, replace=True)
    register_presets(cs)


def register_presets(cs: ConfigStore, module: str = PRESETS_MODULE) -> None:
    """The YAML presets of the package `module` (sweeps/) as the config group `sweep` (subfolders as
    `sweep/<folder>`), each with the package its `# @package` header names.

    Why not a folder in conf/: sweeps/ is a top-level folder of the project, and a symlink conf/sweep
    breaks on Windows checkouts; a second search path cannot rename a folder into a group.
    """
    from hydra.plugins.config_source import ConfigSource

    def walk(folder: Traversable, group: str) -> None:
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.is_dir() and not entry.name.startswith(("_", ".")):
                walk(entry, f"{group}/{entry.name}")
            elif entry.name.endswith(".yaml"):
                text = entry.read_text(encoding="utf-8")
                package = ConfigSource._get_header_dict(text).get("package")  # Hydra's own header parser
                node = OmegaConf.load(io.StringIO(text))
                cs.store(group=group, name=entry.name[: -len(".yaml")], node=node, package=package, replace=True)

    walk(files(module), "sweep")


def plain(cfg: Any) -> dict:
    """A composed config as plain, resolved Python values (enums as strings): for checkpoints, params."""
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)


# Targets renamed since a checkpoint may have been written (0.1 -> 0.2: the package grouped by layer)
MOVED_TARGETS = {"colorize.schedules.": "colorize.training.schedules."}


# Groups added since a checkpoint may have been written, with the option such a run used
ADDED_GROUPS: dict[str, type] = {"loss": MseLossConfig}  # 0.2: before it, every run trained on the MSE


def moved(target: Any) -> Any:
    """A saved `_target_` under its current name."""
    for old, new in MOVED_TARGETS.items():
        if isinstance(target, str) and target.startswith(old):
            return new + target[len(old):]
    return target


def typed(container: dict) -> DictConfig:
    """A saved (plain) config back under its schemas: each group's dataclass found by `_target_`."""
    root = OmegaConf.structured(TrainConfig)
    for group, options in GROUPS.items():
        saved = container.get(group)
        if not isinstance(saved, dict):
            continue
        saved = {**saved, "_target_": moved(saved.get("_target_"))} if "_target_" in saved else saved
        schema = next((c for c in options.values() if getattr(c, "_target_", None) == saved.get("_target_")), None)
        if schema is None and len(options) == 1:
            schema = next(iter(options.values()))
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


def to_object(cfg: DictConfig) -> TrainConfig:
    """Validate a composed config and return it as dataclasses; bad values raise ColorizeError."""
    try:
        return OmegaConf.to_object(cfg)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, ColorizeError):
            raise cause from None
        raise ColorizeError(str(exc).splitlines()[0]) from None


# Targets a config may name: this package's builders, torch's optimizers, Optuna's pruners. Anything else in a
# `_target_` is refused by Hydra (no arbitrary callables from a config file or override).
TRUSTED_TARGETS = ["colorize.*", "torch.optim.*", "optuna.pruners.*"]


def model_of(option: str, **values: Any) -> Any:
    """A model of the `model` group's `option` (baseline | unet): its schema's defaults, then `values`,
    range-checked as a config would be (for code and tests that build a model without Hydra)."""
    schema = GROUPS["model"][option](**values)
    return build(OmegaConf.structured(schema))


def build(node: Any, *args: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` restricted to :data:`TRUSTED_TARGETS`."""
    from hydra.utils import instantiate

    return instantiate(node, *args, _execution_whitelist_=TRUSTED_TARGETS, **kwargs)
