"""Shared helpers: timing medians, subprocess runs of the CLI, result tables and JSON."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "outputs" / "benchmarks"


@dataclass
class Row:
    """One line of the results table: a measurement, its unit and optional comparison."""

    bench: str
    case: str
    value: float
    unit: str
    samples: list[float] = field(default_factory=list)
    note: str = ""


def median_of(fn: Callable[[], float], repeats: int) -> tuple[float, list[float]]:
    samples = [fn() for _ in range(repeats)]
    return statistics.median(samples), samples


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_cli(args: list[str], env: dict | None = None) -> float:
    """Wall seconds of `python -m colorize.train args...` (fails loudly on error)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "colorize.train", *args], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, **(env or {})},
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"colorize.train {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return elapsed


@contextmanager
def worktree(commit: str, path: Path) -> Iterator[Path]:
    """`commit` checked out at `path` (a detached git worktree of this checkout), removed on leaving."""
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), commit],
                   check=True, capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], capture_output=True)


def cpu_class() -> dict:
    """The CPU class a figure belongs to: torch's ATen ISA, oneDNN's cap, native bf16 (and the name)."""
    import torch

    from colorize.training.precision import bf16_is_native, probe

    return {
        "isa": torch.backends.cpu.get_cpu_capability(),  # e.g. AVX512, or AVX2 (also under ATEN_CPU_CAPABILITY=avx2)
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA") or "unset",
        "mkldnn_bf16_supported": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        "native_bf16": bf16_is_native(probe(torch.device("cpu"))),  # what trainer.precision=auto uses
    }


def machine() -> str:
    import torch

    from colorize.tracking.provenance import cpu_name

    cpu = cpu_name()

    c = cpu_class()
    cores = len(os.sched_getaffinity(0))
    return (f"{cpu}, {cores} cores, torch {torch.__version__}, Python {platform.python_version()}; "
            f"ISA {c['isa']} (ONEDNN_MAX_CPU_ISA {c['onednn_max_cpu_isa']}), native bf16 {c['native_bf16']}, "
            f"mkldnn bf16 {c['mkldnn_bf16_supported']}")


def experiment_runs(client, name: str) -> list:
    """The runs of an MLflow experiment the benchmark's command has just made (an error if none is)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        raise SystemExit(f"benchmark: the command made no experiment {name!r} in {client.tracking_uri}")
    return client.search_runs([experiment.experiment_id])


def table(rows: list[Row]) -> str:
    lines = ["| benchmark | case | median | unit | note |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.bench} | {r.case} | {r.value:.4g} | {r.unit} | {r.note} |")
    return "\n".join(lines)


def save(rows: list[Row], name: str = "results") -> Path:
    """Write `rows` to outputs/benchmarks/<name>-<isa>.json (one file per CPU class), keeping rows of
    benchmarks not run this time."""
    OUT.mkdir(parents=True, exist_ok=True)
    cls = cpu_class()
    path = OUT / f"{name}-{cls['isa'].lower()}.json"
    benches = {r.bench for r in rows}
    kept = []
    if path.is_file():
        kept = [r for r in json.loads(path.read_text()).get("rows", []) if r["bench"] not in benches]
    path.write_text(json.dumps({"machine": machine(), "cpu_class": cls, "rows": kept + [r.__dict__ for r in rows]},
                               indent=2))
    return path


def device_stamp(device: str) -> dict[str, str]:
    """The device, torch and date columns of the GPU check's CSVs: the GPU's name, or the CPU's ISA class."""
    import torch

    name = torch.cuda.get_device_name(0) if device == "cuda" else f"cpu ({torch.backends.cpu.get_cpu_capability()})"
    return {"device": name, "torch": torch.__version__, "date": datetime.date.today().isoformat()}


def device_parser(name: str, doc: str, limit: int = 0) -> argparse.ArgumentParser:
    """The arguments of a benchmark the GPU check runs: --device (cuda, the default, or cpu), --limit
    (faces per split; 0: all) and --out (default outputs/benchmarks/<name>); it adds its own."""
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{name}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    parser.add_argument("--limit", type=int, default=limit, help="faces per split (0: all)")
    parser.add_argument("--out", type=Path, default=Path("outputs/benchmarks") / name)
    return parser


def faces_on(device, limit: int = 0) -> tuple:
    """The course faces' train and val splits (at most `limit` each; 0: all) on `device`, as a run keeps them."""
    from colorize.data.faces import load_faces
    from colorize.training.device_images import DeviceImages

    splits = load_faces(limit=limit or None)
    return DeviceImages.from_set(splits.train, device), DeviceImages.from_set(splits.val, device)


def write_rows(path: Path, columns: list[str], rows: list[dict]) -> str:
    """Write `rows` as a CSV at `path`; return them as a Markdown table (what the scripts print last).
    Both through colorize's one table writer (colorize/tables.py)."""
    from colorize.tables import csv_text, markdown

    cells = [[row[c] for c in columns] for row in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(csv_text(columns, cells))
    return markdown(columns, cells).rstrip("\n")
