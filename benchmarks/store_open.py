"""Many processes opening one MLflow store at once, as a sweep's parallel workers do at their first trial.

    python -m benchmarks.store_open --procs 1 2 8 16 --repeats 5

Why: on a lent H200 the 16 workers of `procs16+graphs` logged their first trials about 2 s apart, one
after another (docs/gpu/2026-12-04/rates/procs16_graphs-2-conv_k5_c8.log: 16:53:03 to 16:53:33),
and trained only after the last: each took the store's creation lock (`colorize.paths.creation_lock`)
and held it while MLflow imported its SQL store and checked the schema, which a store that exists
does not need. Here each child imports `colorize.job` (what a trial's worker has imported), waits at a
barrier until all have, then opens a `Tracker` on the same existing sqlite store (as a trial does
first). Per number of processes, the median over repeats of the span from the barrier's release to
the last process's store being open, and of one process's own opening; a fresh store per repeat.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import device_stamp, write_rows

COLUMNS = ["procs", "span_s", "median_open_s", "spans", "device", "torch", "date"]
POLL_S = 0.005


def child(uri: str, folder: Path, index: int) -> dict:
    """Import as a worker has, say so, wait for the go, open the store: the seconds it took."""
    import colorize.job  # noqa: F401  (torch, Hydra, the package; MLflow's SQL store is imported when opened)
    from colorize.tracking.store import Tracker

    (folder / f"ready-{index}").touch()
    go = folder / "go"
    while not go.exists():
        time.sleep(POLL_S)
    seen = time.time()
    Tracker(uri, "workers")
    end = time.time()
    return {"end": end, "open_s": end - seen}


def measure(procs: int) -> tuple[float, float]:
    """`procs` children open one existing store at once: (span from the go to the last open, median open)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder, uri = Path(tmp), f"sqlite:///{tmp}/mlflow.db"
        from colorize.tracking.store import Tracker

        Tracker(uri, "workers")  # the store exists, as the sweep's parent run made it
        cmd = [sys.executable, "-m", "benchmarks.store_open", "--child", "--uri", uri, "--folder", tmp]
        running = [subprocess.Popen([*cmd, "--index", str(i)], stdout=subprocess.PIPE, text=True)
                   for i in range(procs)]
        while sum(1 for _ in folder.glob("ready-*")) < procs:
            time.sleep(POLL_S)
        start = time.time()
        (folder / "go").write_text(repr(start))
        results = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in running]
    return max(r["end"] for r in results) - start, statistics.median(r["open_s"] for r in results)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.store_open", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--procs", nargs="+", type=int, default=[1, 2, 8, 16])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("outputs/benchmarks/store_open"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--uri", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.uri, args.folder, args.index)))
        return []
    stamp, rows = device_stamp("cpu"), []
    for procs in args.procs:
        runs = [measure(procs) for _ in range(args.repeats)]
        spans = [span for span, _ in runs]
        rows.append({"procs": procs, "span_s": f"{statistics.median(spans):.2f}",
                     "median_open_s": f"{statistics.median(o for _, o in runs):.2f}",
                     "spans": " ".join(f"{s:.2f}" for s in spans), **stamp})
    args.out.mkdir(parents=True, exist_ok=True)
    print(write_rows(args.out / "store_open.csv", COLUMNS, rows))
    return rows


if __name__ == "__main__":
    main()
