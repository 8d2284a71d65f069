"""The train config as the commands compose it, with Hydra's own composition: overrides split into
task and Hydra ones, the config composed from the task overrides, and a failed composition as one line.

`colorize-train` checks its command line here before it hands it to Hydra (`check_command_line`):
Hydra would report a bad key, type or option in several lines of its own, and only after making
the run's folder; here it is one `colorize: error:` line naming the override, and nothing is made.
"""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING, Sequence

import yaml
from hydra import compose, initialize_config_module
from omegaconf import DictConfig, open_dict

from colorize.config.build import to_object
from colorize.config.launcher import multirun_error
from colorize.config.registry import register_configs
from colorize.errors import ColorizeError
from colorize.paths import CONFIG_MODULE

if TYPE_CHECKING:
    from hydra.core.override_parser.types import Override

MULTIRUN_FLAGS = ("-m", "--multirun")  # the only flags a checked run's command line may hold
# Hydra's flags of a command line that prints the config (`--cfg job`), each with whether it takes a value
PRINT_FLAGS = {"--cfg": True, "-c": True, "--package": True, "-p": True, "--resolve": False}
SCHEMA_SUFFIX = "_schema"  # registry.py's name for an option's schema in Hydra's ConfigStore
DROPPED = ("full_key:", "object_type=", "reference_type=")  # OmegaConf's detail lines: the message names the key


def override_key(override: str) -> str:
    """The key an override sets (`+a.b=1`, `~a.b`: `a.b`)."""
    return override.split("=", 1)[0].lstrip("+~")


def as_written(override: Override) -> str:
    """A parsed override as the command line wrote it (Hydra's parser always sets `input_line`; its
    type allows None)."""
    assert override.input_line is not None
    return override.input_line


def split_overrides(overrides: Sequence[str]) -> tuple[list[str], list[str]]:
    """(task, hydra): Hydra's own split, so `task` is what a sweep's `overrides` tag records."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except Exception as exc:
        message = one_line(exc)
        raise ColorizeError(f"{culprit(overrides, message)}: {message}") from None
    task = [as_written(o) for o in parsed if not o.is_hydra_override()]
    hydra = [as_written(o) for o in parsed if o.is_hydra_override()]
    return task, hydra


def optional_groups() -> list[str]:
    """The groups the primary config lists as `optional` (experiment, sweep). Hydra skips an option
    of theirs that does not exist, without a word: `sweep=layer` (for `layers`) would run the default
    config as a one-trial sweep."""
    defaults = yaml.safe_load((files(CONFIG_MODULE) / "train.yaml").read_text())["defaults"]
    return [key.split()[-1] for entry in defaults if isinstance(entry, dict) for key in entry
            if key.startswith("optional ")]


def check_options(overrides: Sequence[str]) -> None:
    """ColorizeError (one line, in Hydra's words for any other group) if an override picks an option
    of an optional group that does not exist (its value, or any value it sweeps: `sweep=lr,layer`), or
    gives any group null (`sweep=null`: Hydra's message names neither the override nor the options)."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    groups = optional_groups()
    picks = [(o, list(o.sweep_string_iterator()) if o.is_discrete_sweep() else [o.value()])
             for o in OverridesParser.create().parse_overrides(list(overrides)) if not o.is_delete()]
    picks = [(o, values) for o, values in picks
             if o.key_or_group in groups or any(v in (None, "null") for v in values)]
    if not picks:
        return
    register_configs()
    with initialize_config_module(CONFIG_MODULE):
        loader = GlobalHydra.instance().config_loader()
        options = {o.key_or_group: [option for option in loader.get_group_options(o.key_or_group)
                                    if not option.endswith(SCHEMA_SUFFIX)] for o, _ in picks}
    for override, values in picks:
        group, known = override.key_or_group, options[override.key_or_group]
        if not known:
            continue  # a key, not a group: null is its value, which the schema checks
        for value in values:
            null = value in (None, "null")
            if null or value not in known:
                found = "null is not an option" if null else f"Could not find '{group}/{value}'"
                unset = f" (leave {group} out for none)" if null and group in groups else ""
                raise ColorizeError(f"{override.input_line} is invalid: {found}; "
                                    f"Available options in '{group}': {', '.join(known)}{unset}")


def compose_train(overrides: Sequence[str], hydra_config: bool = False):
    """The config `colorize-train` composes from these task overrides (no sweeps: one value per key)."""
    check_options(overrides)
    register_configs()
    try:
        with initialize_config_module(CONFIG_MODULE):
            return compose("train", overrides=list(overrides), return_hydra_config=hydra_config)
    except Exception as exc:
        message = one_line(exc)
        raise ColorizeError(f"{culprit(overrides, message)}: {message}") from None


def culprit(overrides: Sequence[str], message: str) -> str:
    """`K=V is invalid` for the override that Hydra's message names first (whole, else its key or
    group option `K/V` quoted), else `bad overrides` and all of them."""
    for forms in (lambda o, key, value: [o], lambda o, key, value: [f"'{key}'", f"'{key}/{value}'"]):
        found: dict[str, int] = {}
        for override in overrides:
            key, _, value = override.lstrip("+~").partition("=")
            where = [message.find(form) for form in forms(override, key, value) if form in message]
            if where:
                found[override] = min(where)
        if found:
            return f"{min(found, key=found.__getitem__)} is invalid"
    return f"bad overrides {' '.join(overrides)}"


def one_line(exc: BaseException) -> str:
    """Hydra's composition error and its OmegaConf cause in one line: `Could not override 'model.layers';
    Value 'two' of type 'str' could not be converted to Integer`. The config search path is left out;
    a list of available options is joined by commas."""
    lines: list[str] = []
    for error in (exc, exc.__cause__):
        text = str(error or "").split("Config search path")[0]
        for line in (raw.strip() for raw in text.splitlines()):
            if not line or line.startswith(DROPPED):
                continue
            if lines and "options in" in lines[-1] and " " not in line:  # one of a group's options
                if not line.endswith(SCHEMA_SUFFIX):  # a schema beside its option: not one to choose
                    lines[-1] += (" " if lines[-1].endswith(":") else ", ") + line
            else:
                lines.append(line.rstrip("."))
    return "; ".join(dict.fromkeys(lines))  # once each: Hydra repeats its cause's text in some messages


def first_values(task: Sequence[str]) -> list[str]:
    """The task overrides with each swept key at its first value (`model.layers=1,2,4` -> `model.layers=1`),
    so that one composition checks every key; a sweep with no listable values (Optuna's `interval`)
    is left out."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    single = []
    for override in OverridesParser.create().parse_overrides(list(task)):
        if not override.is_sweep_override():
            single.append(as_written(override))
            continue
        try:
            first = next(iter(override.sweep_string_iterator()))
        except Exception:  # interval(...) and friends: Hydra and Optuna check those themselves
            continue
        single.append(f"{override.get_key_element()}={first}")
    return single


def printed_overrides(argv: Sequence[str]) -> list[str] | None:
    """The overrides of a command line that prints the config (`--cfg job data=faces`), its flags and
    their values left out; None for any other command line (no `--cfg`, or another flag too)."""
    if not {"--cfg", "-c"} & set(argv):
        return None
    overrides, value_next = [], False
    for arg in argv:
        if value_next:
            value_next = False
        elif arg in PRINT_FLAGS:
            value_next = PRINT_FLAGS[arg]
        elif arg.startswith("-"):
            return None
        else:
            overrides.append(arg)
    return overrides


def check_command_line(argv: Sequence[str]) -> DictConfig | None:
    """ColorizeError (one line) if `colorize-train argv` would not compose (a bad key, type or option,
    Hydra's own `hydra/launcher=...` and `hydra.*` included, or an optional group's missing option),
    or, for a single run, if a value is out of range, or, for a multirun, a launcher or sweeper count
    (`colorize.config.launcher`). A command line with any flag but -m (`--help`, `--cfg`, `-cn`, ...)
    is left to Hydra, but for `--cfg` (with `--package`, `--resolve`), whose config must compose (its
    values' ranges are the run's to check). A multirun is composed at each swept key's first value, as
    its first job will be; each job range-checks its own values (a bad one fails that job, and the
    sweep goes on). Returns a multirun's composed `hydra` config (its sweeper's trials: colorize-study's
    plan); None for any other command line."""
    printed = printed_overrides(argv)
    if printed is not None:
        task, hydra = split_overrides(printed)
        compose_train(first_values(task) + first_values(hydra), hydra_config=True)
        return None
    if any(arg.startswith("-") and arg not in MULTIRUN_FLAGS for arg in argv):
        return None
    task, hydra = split_overrides([arg for arg in argv if arg not in MULTIRUN_FLAGS])
    single = first_values(task)
    check_options([o for o in task if o not in single])  # the sweeps' values: compose_train checks the first
    cfg = compose_train(single + first_values(hydra), hydra_config=True)  # a launcher's typo too
    with open_dict(cfg):
        hydra_cfg = cfg.pop("hydra")
    if any(arg in MULTIRUN_FLAGS or arg == "hydra.mode=MULTIRUN" for arg in argv):
        why = multirun_error(hydra_cfg)  # before Hydra makes the sweep's folder and parent run
        if why:
            raise ColorizeError(why)
        return hydra_cfg
    swept = [override for override in task if override not in single]
    if swept:
        raise ColorizeError(f"{swept[0]} sweeps several values, which a single run cannot: add -m to run "
                            "one job per value (a list value is written [a,b])")
    to_object(cfg)
    return None
