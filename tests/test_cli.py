"""The console scripts, and Hydra's shell completion for colorize-train."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_script
from tests.test_docs import documented_options

BIN = Path(sys.executable).parent


@pytest.mark.e2e
@pytest.mark.parametrize("name,options", [
    ("colorize-study", ["--seeds", "--presets", "--search-trials", "--search-override", "--jobs"]),
    ("colorize-report", ["--sweep", "--preset", "--all", "--compare", "--labels", "--uri", "--out"]),
    ("colorize-predict", ["--out", "--uri", "--tta", "--device", "--limit"]),
    ("colorize-evaluate", ["--cast"]),
    ("colorize-register", ["--alias", "--uri"]),
])
def test_every_tool_has_a_console_script_whose_help_names_its_options(name, options):
    """Its own options, and every option README.md and docs/ give it (tests/test_docs.py reads them)."""
    documented = documented_options(name)
    assert documented, f"the docs never show {name} with an option"
    proc = run_script(name, "--help")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"usage: {name} ")  # the command's own name, not "python -m ..."
    assert [o for o in sorted(set(options) | documented) if o not in proc.stdout] == []


def complete(line: str) -> set[str]:
    env = {**os.environ, "COMP_LINE": line, "COMP_POINT": str(len(line))}
    proc = subprocess.run([str(BIN / "colorize-train"), "-sc", "query=bash"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(proc.stdout.split())


@pytest.mark.e2e
def test_shell_completion_completes_config_groups_options_and_presets():
    top = complete("colorize-train ")
    assert {"model=", "optimizer=", "loss=", "callbacks="} <= top
    assert "sweep" in top  # a group with a subgroup (sweep/variant): completed as `sweep`, then its options
    assert {"model=baseline", "model=unet"} <= complete("colorize-train model=")
    assert {"sweep=layers", "sweep=lr", "sweep=search"} <= complete("colorize-train sweep=")  # the shipped presets
    assert "model.layers=" in complete("colorize-train model.la")


@pytest.mark.e2e
def test_the_installed_bash_completion_completes_a_config_group():
    """What a user does: eval the script Hydra prints, then press TAB after `colorize-train mod`."""
    script = f'''
        export PATH="{BIN}:$PATH"
        eval "$(colorize-train -sc install=bash)"
        COMP_LINE="colorize-train mod"; COMP_POINT=${{#COMP_LINE}}; COMP_CWORD=1
        hydra_bash_completion
        printf '%s\\n' "${{COMPREPLY[@]}}"
    '''
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "model=" in proc.stdout.split(), proc.stdout


@pytest.mark.e2e
def test_the_first_command_colorizes_beyond_the_gray_baseline_and_says_where_to_look(tmp_path):
    """The README's first command, from an empty folder: at least 0.05 above predicting gray for all
    three channels, then the figure's path and the MLflow UI command as its last lines."""
    from mlflow.tracking import MlflowClient

    from colorize.data.samples import load_samples
    from colorize.training.metrics import margin_accuracy

    proc = run_script("colorize-train", "experiment=quickstart", cwd=tmp_path, drop=("MLFLOW_TRACKING_URI",))
    assert proc.returncode == 0, proc.stderr[-3000:]
    val = load_samples().val
    gray = margin_accuracy(val.gray.expand(-1, 3, -1, -1), val.rgb)  # the luma as R, G and B
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("colorize").experiment_id])
    accuracy = run.data.metrics["best_val_margin12_accuracy"]
    assert accuracy >= gray + 0.05, (accuracy, gray)
    last = proc.stdout.strip().splitlines()[-2:]
    assert last[0].startswith("samples: ") and Path(last[0].split(": ", 1)[1]).is_file()
    exp = run.info.experiment_id
    assert last[1] == ("browse: mlflow ui --port 5000, then open "
                       f"http://127.0.0.1:5000/#/experiments/{exp}/runs/{run.info.run_id}?workflowType=machine_learning")


HEAVY = ("torch", "mlflow", "optuna", "matplotlib")  # seconds of imports a refused command need not pay


@pytest.mark.e2e
@pytest.mark.parametrize("module,args,said", [
    ("colorize.train", ["--help"], "== Configuration groups =="),
    ("colorize.train", ["model.kernel_size=4"], "colorize: error: model.kernel_size=4 is invalid"),  # a range check
    ("colorize.train", ["model.layerz=2"], "colorize: error: model.layerz=2 is invalid"),  # Hydra's composition
    ("colorize.train", ["sweep=lr", "hydra.mode=RUN"], "sweep=lr is a multirun preset"),  # a job's context
    ("colorize.study", ["--help"], "usage: colorize-study"),
    ("colorize.study", ["--presets", "layers,nope"], "colorize: error: --presets nope is invalid"),
    ("colorize.study", ["model.kernel_size=4"], "colorize: error: model.kernel_size=4 is invalid"),
    ("colorize.study", ["trainer.seed=1", "--seeds", "3"], "colorize: error: --seeds and a trainer.seed override"),
    ("colorize.study", ["--jobs", "0"], "colorize: error: --jobs 0 is invalid: must be auto or an integer >= 1"),
    ("colorize.study", ["--seeds", "0"], "colorize: error: --seeds 0 is invalid: must be an integer >= 1"),
    ("colorize.study", ["--presets", ",,"], "colorize: error: --presets ',,' is invalid: name one or more of layers,"),
    # once an MLflow traceback at the report, after every preset had run
    ("colorize.study", ["--name", "../x"], "colorize: error: --name '../x' is invalid: must be one folder name"),
    ("colorize.report", ["--name", ".."], "colorize: error: --name '..' is invalid: must be one folder name"),
    ("colorize.study", ["--search-trials", "0"], "colorize: error: --search-trials 0 is invalid: must be an "),
    ("colorize.study", ["--jobs", "2"], "colorize: error: --jobs 2 needs a launcher that runs jobs at once"),
    ("colorize.report", ["--help"], "usage: colorize-report"),
    ("colorize.predict", ["--help"], "usage: colorize-predict"),
    ("colorize.evaluate", ["--help"], "usage: colorize-evaluate"),
    ("colorize.evaluate", ["nothing.npy", "names.txt"], "colorize: error: 'nothing.npy' does not exist"),
    ("colorize.register", ["--help"], "usage: colorize-register"),
    ("colorize.register", ["0" * 32, "fa/ces"], "colorize: error: name='fa/ces' is invalid"),
    ("colorize.predict", ["models:/faces", "images"], "colorize: error: model='models:/faces' is invalid"),
    ("colorize.predict", ["0" * 32, "images", "--limit", "-3"], "colorize: error: --limit -3 is invalid: must be "),
])
def test_help_and_refused_input_answer_before_the_heavy_imports(module, args, said, tmp_path):
    """Hydra imports every plugin and callback at start-up: those of colorize import none of these, and
    each command imports them once its input has passed its checks (so none is opened or created)."""
    dirs = [f"hydra.run.dir={tmp_path}/run", f"hydra.sweep.dir={tmp_path}/sweep"]
    hydra_dirs = dirs if module.endswith("train") else []
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", module, *args, *hydra_dirs],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert said in proc.stdout + proc.stderr
    assert proc.returncode == (0 if args == ["--help"] else 1)
    imported = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "colorize.errors" in imported  # the import log was read
    assert [m for m in HEAVY if m in imported] == []
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["run"])  # no store: at most Hydra's run folder


@pytest.mark.e2e
@pytest.mark.parametrize("args,said", [
    (["model.layerz=2"], "model.layerz=2 is invalid: Could not override 'model.layerz'"),
    (["model=resnet"], "model=resnet is invalid: In 'train': Could not find 'model/resnet'"),
    (["model.kernel_size=4"], "model.kernel_size=4 is invalid: must be an odd integer"),
    (["model.layers=1,2"], "model.layers=1,2 sweeps several values"),
    # an optional group's typo: Hydra itself would skip it and run the default config as a sweep
    (["sweep=layer"], "sweep=layer is invalid: Could not find 'sweep/layer'; Available options in 'sweep': further,"),
    # once a traceback after the sweep's folder and parent run were made
    (["-m", "hydra/launcher=fused", "hydra.launcher.n_jobs=0"], "hydra.launcher.n_jobs=0 is invalid: must be "),
])
def test_colorize_train_refuses_bad_input_in_one_line_and_makes_no_folder(args, said, tmp_path):
    """Hydra would say these in several lines, some after making the run's folder under outputs/."""
    proc = run_script("colorize-train", *args, cwd=tmp_path)
    assert proc.returncode == 1
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"colorize: error: {said}"), line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.e2e
def test_a_search_whose_optuna_store_cannot_be_made_is_one_line_and_opens_no_parent_run(tmp_path):
    """Once a warning from the sweep callback, then a traceback from the sweeper (colorize/paths.py)."""
    from tests.conftest import runs_in

    (tmp_path / "a_file").write_text("in the way")
    storage, uri = f"sqlite:///{tmp_path}/a_file/study/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    proc = run_script("colorize-train", "-m", "sweep=search", f"hydra.sweeper.storage={storage}",
                      f"tracking.uri={uri}", "tracking.experiment=nowhere", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "UserWarning" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"colorize: error: cannot make the sqlite store '{storage}': its folder '{tmp_path}/a_file/study' cannot "
        "be made (Not a directory)")
    assert runs_in(uri, "nowhere")[1] == []


@pytest.mark.parametrize("name,ok", [("study", True), ("cpu-24-epochs", True), ("v1.2_final", True), ("", False),
                                     (".", False), ("..", False), ("../x", False), ("a/b", False), (".hidden", False)])
def test_a_report_name_is_one_plain_folder_name(name, ok):
    from colorize.cli import check_report_name
    from colorize.errors import ColorizeError

    if ok:
        check_report_name(name)
        return
    with pytest.raises(ColorizeError, match=r"^--name .* is invalid: must be one folder name"):
        check_report_name(name)
