"""End-to-end overhead of `python -m colorize.train` (Hydra, MLflow, artifacts) vs the bare loop."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import textwrap

from mlflow.tracking import MlflowClient

from benchmarks.common import ROOT, Row, run_cli, timed
from colorize.paths import faces_root

MODEL = ["model.layers=2", "model.channels=16", "model.kernel_size=5", "model.tanh=true", "optimizer.lr=0.1"]

BARE = textwrap.dedent("""
    import torch
    from colorize.data.faces import load_faces
    from colorize.config import model_of
    from colorize.training.runtime import seed_everything
    from colorize.training.device_images import DeviceImages
    from colorize.training.epoch import evaluate, train_epoch
    from colorize.training.options import FitOptions
    gen = seed_everything(0)
    splits = load_faces({root!r})
    train = DeviceImages.from_set(splits.train, torch.device("cpu"))
    val = DeviceImages.from_set(splits.val, torch.device("cpu"))
    model = model_of("baseline", layers=2, kernel_size=5, channels=16, tanh=True).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(1, {epochs} + 1):
        train_epoch(model, opt, train, gen, epoch, FitOptions(1, 16, progress=False))
        evaluate(model, val)
""")


def overhead(repeats: int, epochs: int = 3) -> list[Row]:
    """Both as fresh processes (imports, data decoding and 3 epochs included in both)."""
    bare_cmd = [sys.executable, "-c", BARE.format(root=str(faces_root()), epochs=epochs)]
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        MlflowClient(tracking_uri=uri).search_experiments()  # an existing store, as in daily use
        bare, cli = [], []
        for i in range(repeats):
            bare.append(timed(lambda: subprocess.run(bare_cmd, cwd=ROOT, check=True, capture_output=True)))
            cli.append(run_cli(["data=faces", *MODEL, f"trainer.max_epochs={epochs}", f"tracking.uri={uri}",
                                f"hydra.run.dir={tmp}/run{i}"]))
    b, c = statistics.median(bare), statistics.median(cli)
    return [
        Row("overhead", f"bare loop, {epochs} epochs (process)", b, "s", bare, "imports + decode + train + eval"),
        Row("overhead", f"python -m colorize.train, {epochs} epochs", c, "s", cli, "+ Hydra, MLflow, artifacts"),
        Row("overhead", "end-to-end overhead", c / b - 1, "fraction", note="(cli - bare) / bare"),
    ]


STARTUP = {  # what a command costs before it works: the console's answer to help and to bad input
    "colorize-train --help": ["colorize.train", "--help"],
    "a bad value (model.kernel_size=4)": ["colorize.train", "model.kernel_size=4"],
    "a bad key (model.layerz=2)": ["colorize.train", "model.layerz=2"],
    "colorize-study --help": ["colorize.study", "--help"],
    "colorize-study, a bad value (model.kernel_size=4)": ["colorize.study", "model.kernel_size=4"],
    "colorize-report --help": ["colorize.report", "--help"],
    "colorize-predict --help": ["colorize.predict", "--help"],
    "colorize-evaluate --help": ["colorize.evaluate", "--help"],
    "colorize-register --help": ["colorize.register", "--help"],
}


def startup(repeats: int) -> list[Row]:
    """Wall seconds of `python -m colorize.<command>` that ends before any work: help and refused input.
    The test suite starts dozens of these, and a user waits for each."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case, (module, *args) in STARTUP.items():
            hydra_dir = [f"hydra.run.dir={tmp}/run"] if module == "colorize.train" else []
            cmd = [sys.executable, "-m", module, *args, *hydra_dir]
            samples = [timed(lambda: subprocess.run(cmd, cwd=tmp, capture_output=True)) for _ in range(repeats)]
            rows.append(Row("startup", case, statistics.median(samples), "s", samples, "exits before any data"))
        # the least a training process costs (most end-to-end tests start several): imports, the store,
        # one epoch on 8 bundled tiles, its checkpoints and samples figure
        uri = f"sqlite:///{tmp}/mlflow.db"
        cmd = [sys.executable, "-m", "colorize.train", "data.limit=8", "trainer.max_epochs=1", f"tracking.uri={uri}"]
        samples = [timed(lambda: subprocess.run([*cmd, f"hydra.run.dir={tmp}/least{i}"], cwd=tmp, check=True,
                                                capture_output=True)) for i in range(repeats)]
        rows.append(Row("startup", "a 1-epoch run on 8 tiles", statistics.median(samples), "s", samples,
                        "imports, store, 1 epoch, checkpoints, samples.png"))
    return rows
