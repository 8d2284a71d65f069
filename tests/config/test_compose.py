"""colorize/config/compose.py: the commands' composition (real Hydra), and colorize-train's command line
checked before Hydra runs: every bad key, type, option or value in one line that names it."""

import pytest

from colorize.config.compose import check_command_line, compose_train, first_values, one_line, split_overrides
from colorize.errors import ColorizeError


def refused(*argv: str) -> str:
    with pytest.raises(ColorizeError) as info:
        check_command_line(list(argv))
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("argv,starts,says", [
    (["model.layerz=2"], "model.layerz=2 is invalid: ", ["Key 'layerz' not in 'ConvNetConfig'", "+model.layerz=2"]),
    (["data=faces", "model.layers=two"], "model.layers=two is invalid: ", ["'two'", "Integer"]),
    (["model=resnet"], "model=resnet is invalid: ", ["'model/resnet'", "options in 'model': baseline, unet"]),
    # syntax
    (["optimizer=sgd", "optimizer.lr=[1"], "optimizer.lr=[1 is invalid: ", ["no viable alternative at input '[1'"]),
    (["-m", "model.layerz=1,2"], "model.layerz=1 is invalid: ", ["Key 'layerz' not in"]),  # a sweep's key
    (["model.kernel_size=4"], "model.kernel_size=4 is invalid: ", ["must be an odd integer"]),  # a range
    (["model.layers=1,2"], "model.layers=1,2 sweeps several values", ["add -m"]),  # a sweep in a single run
    # optional groups, which Hydra skips without a word when the option does not exist
    (["sweep=layer"], "sweep=layer is invalid: ", ["'sweep/layer'", "options in 'sweep': further, kernel_size, "
                                                   "kernels, layers, losses, lr, search, search_quality, search_unet"]),
    (["experiment=bets"], "experiment=bets is invalid: ", ["'experiment/bets'", "options in 'experiment': best, "]),
    (["-m", "experiment=best,bets"], "experiment=best,bets is invalid: ", ["'experiment/bets'"]),  # not only the first
    # null for a group: Hydra's own message names neither the override nor the options
    (["sweep=null"], "sweep=null is invalid: null is not an option; ", ["options in 'sweep': further,",
                                                                       "(leave sweep out for none)"]),
    (["model=null"], "model=null is invalid: null is not an option; ", ["options in 'model': baseline, unet"]),
    (["-m", "sweep=lr,null"], "sweep=lr,null is invalid: null is not an option", ["options in 'sweep'"]),
    (["model.layers=null"], "model.layers=null is invalid: ", ["'model.layers' is not Optional"]),  # a key: its schema
    # Hydra's own groups and keys, and the launcher's and sweeper's counts (before the sweep's folder and parent run)
    (["hydra/launcher=fuse"], "hydra/launcher=fuse is invalid: ",
     ["'hydra/launcher/fuse'", "options in 'hydra/launcher': basic, fused, joblib"]),
    (["-m", "hydra.launcher.njobs=3"], "hydra.launcher.njobs=3 is invalid: ", ["Key 'njobs' not in"]),
    (["-m", "hydra/launcher=fused", "hydra.launcher.n_jobs=0"], "hydra.launcher.n_jobs=0 is invalid: ",
     ["must be an integer >= 1", "or null (auto)"]),
    (["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=0"], "hydra.launcher.n_jobs=0 is invalid: ",
     ["-1 for every"]),
    (["-m", "sweep=search", "hydra.sweeper.n_trials=0"], "hydra.sweeper.n_trials=0 is invalid: ", ["integer >= 1"]),
    # a config to print must compose
    (["--cfg", "job", "model.layerz=2"], "model.layerz=2 is invalid: ", ["Key 'layerz' not in 'ConvNetConfig'"]),
    (["-c", "all", "--resolve", "model.layers=two"], "model.layers=two is invalid: ", ["Integer"]),
    (["--cfg", "hydra", "hydra/launcher=fuse"], "hydra/launcher=fuse is invalid: ", ["'hydra/launcher/fuse'"]),
])
def test_a_bad_command_line_is_one_line_naming_the_override(argv, starts, says):
    message = refused(*argv)
    assert message.startswith(starts), message
    assert [s for s in says if s not in message] == [], message
    assert "Config search path" not in message and "full_key" not in message


@pytest.mark.parametrize("argv", [
    [],
    ["data=faces", "model.layers=4", "model.kernel_size=5", "optimizer.lr=0.01"],
    ["experiment=best"],
    ["-m", "model.layers=1,2,4", "optimizer.lr=0.1,0.01"],
    ["-m", "model.kernel_size=4,3"],  # a multirun: each job range-checks its own values
    ["--multirun", "sweep=lr", "data.limit=50"],
    ["--multirun", "sweep=search", "hydra.sweeper.n_trials=3", "hydra/launcher=fused"],
    ["-m", "optimizer.lr=interval(0.001,0.1)"],  # no listable values: Optuna checks it
    ["-m", "experiment=best,quickstart", "~sweep"],
    ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=-1", "hydra.sweep.dir=/tmp/somewhere"],
    ["-m", "hydra/launcher=fused", "hydra.launcher.max_group=0", "hydra.launcher.n_jobs=null"],
    ["-m", "sweep=search", "hydra.sweeper.n_trials=1", "hydra.sweeper.n_jobs=2", "hydra.verbose=true"],
    ["sweep=lr", "hydra.mode=RUN"],  # composes; the job's context refuses it, in one line of its own
    ["--cfg", "job", "model.kernel_size=4"],  # printing a config: its ranges are the run's to check
    ["--cfg", "hydra", "--resolve", "data=faces", "hydra/launcher=fused"],
    ["-c", "job", "--package", "model", "model=unet"],
    ["--cfg", "job", "--info", "model.layerz=2"],  # another flag: the whole line is Hydra's to check
    ["--help"],
])
def test_good_command_lines_and_those_with_other_flags_pass(argv):
    check_command_line(argv)


def test_the_optional_groups_are_the_primary_configs_and_compose_train_checks_their_options():
    """colorize-study composes the user's overrides with compose_train: an optional group's typo is
    refused there too, before any preset runs."""
    from colorize.config.compose import optional_groups

    assert optional_groups() == ["experiment", "sweep"]
    with pytest.raises(ColorizeError, match=r"^experiment=nope is invalid: Could not find 'experiment/nope'"):
        compose_train(["data=faces", "experiment=nope"])
    assert compose_train(["experiment=best"]).model != compose_train([]).model  # an option that exists applies


def test_count_error_checks_the_counts_of_the_plugin_it_names_and_passes_null():
    from colorize.config.launcher import count_error

    fused = "colorize.launch.fused_launcher.FusedLauncher"
    assert count_error("launcher", {"_target_": fused, "n_jobs": None, "max_group": None}) is None
    assert count_error("launcher", {"_target_": fused, "n_jobs": 2, "max_group": -1}) == (
        "hydra.launcher.max_group=-1 is invalid: must be an integer >= 0 (0: no limit), or null (auto)")
    assert count_error("launcher", {"_target_": "a.OtherLauncher", "n_jobs": 0}) is None  # not one colorize knows
    assert count_error("sweeper", {"_target_": fused, "n_jobs": 0}) is None  # a launcher's rule, not a sweeper's


def test_first_values_puts_each_swept_key_at_its_first_value():
    task = ["model.layers=1,2,4", "optimizer.lr=0.1", "trainer.seed=range(3,6)", "+model.extra=a,b",
            "optimizer.weight_decay=interval(0,0.1)"]
    assert first_values(task) == ["model.layers=1", "optimizer.lr=0.1", "trainer.seed=3", "+model.extra=a"]


def test_overrides_split_as_hydra_splits_them_and_compose_as_colorize_train_does():
    task, hydra = split_overrides(["model.layers=2", "hydra/launcher=fused", "hydra.sweeper.n_trials=3", "data=faces"])
    assert (task, hydra) == (["model.layers=2", "data=faces"], ["hydra/launcher=fused", "hydra.sweeper.n_trials=3"])
    cfg = compose_train(task)
    assert cfg.model.layers == 2 and cfg.data._target_.endswith("load_faces") and "hydra" not in cfg


def test_one_line_keeps_hydras_words_and_lists_the_options_without_their_schemas():
    missing = Exception("In 'train': Could not find 'loss/l3'\n\nAvailable options in 'loss':\n\tcast_split_schema\n"
                        "\tcast_split\n\tl1\n\tl1_schema\n\tmse\nConfig search path:\n\tprovider=hydra, path=pkg://hydra.conf")
    assert one_line(missing) == "In 'train': Could not find 'loss/l3'; Available options in 'loss': cast_split, l1, mse"
    cause = Exception("Key 'layerz' not in 'ConvNetConfig'\n    full_key: model.layerz\n    object_type=ConvNetConfig")
    error = Exception("Could not override 'model.layerz'.\nTo append to your config use +model.layerz=2")
    error.__cause__ = cause
    assert one_line(error) == ("Could not override 'model.layerz'; To append to your config use +model.layerz=2; "
                               "Key 'layerz' not in 'ConvNetConfig'")
