"""Peak memory and wall time of `colorize-predict --png` on folders of photos, and of `colorize-evaluate`
on what it wrote, against an earlier commit.

    python -m benchmarks.predict_memory [--commit f1183cb] [--photos 15 45] [--size 1024x768]
        [--repeats 3] [model overrides, default: model.layers=2]

Makes the photos (val faces enlarged to SIZE, as JPEGs) and an untrained network's checkpoint (its size,
not its weights, sets the memory), then runs `python -m colorize.predict CKPT PHOTOS --out OUT --png`
and `python -m colorize.evaluate OUT/estimations.npy OUT/img_names.txt` (the photos are their own
ground truth) from the earlier commit (a git worktree) and from this checkout, alternating,
`--repeats` times per folder; without --commit, from this checkout alone (folders the earlier code
could not hold in memory). Peak memory is the child's maximum resident set size (getrusage, read
by a launcher process of its own, so each figure is one run's). Prints medians; writes
outputs/benchmarks/predict_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from contextlib import nullcontext
from pathlib import Path

from benchmarks.common import ROOT, cpu_class, worktree

FACES = Path(os.environ.get("COLORIZE_FACES_ROOT", ROOT.parent / "shared" / "data" / "ceng483-hw3-dataset"))
# runs argv[1:] and prints its peak RSS in KiB: RUSAGE_CHILDREN is the largest of all waited children,
# so each run gets a launcher of its own
LAUNCHER = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)")


def make_photos(folder: Path, count: int, size: tuple[int, int]) -> None:
    from PIL import Image

    folder.mkdir(parents=True)
    for i in range(count):
        with Image.open(FACES / "val" / "images" / f"{i}.jpg") as face:
            face.resize(size, Image.Resampling.BICUBIC).save(folder / f"{i}.jpg", quality=90)


def make_checkpoint(path: Path, overrides: list[str]) -> None:
    from colorize.config import build, plain
    from colorize.config.compose import compose_train
    from colorize.training.checkpoint import save_checkpoint

    cfg = compose_train(overrides)
    save_checkpoint(path, build(cfg.model), plain(cfg.model))


def peak(code: Path, cwd: Path, module: str, *args: str) -> tuple[float, float]:
    """(peak RSS in MiB, wall seconds) of one `python -m module args` run from the checkout at `code`."""
    import time

    env = {**os.environ, "PYTHONPATH": str(code)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", LAUNCHER, sys.executable, "-m", module, *args], env=env, cwd=cwd,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{module} from {code} failed:\n{proc.stderr[-3000:]}")
    return int(proc.stdout.split()[-1]) / 1024, seconds


def predict_once(code: Path, ckpt: Path, photos: Path, out: Path) -> tuple[float, float, float, float]:
    """colorize-predict --png of `photos` into `out`, then colorize-evaluate of what it wrote (the photos
    are their own ground truth): (peak MiB, seconds) of each."""
    predicted = peak(code, out.parent, "colorize.predict", str(ckpt), str(photos), "--out", str(out), "--png")
    evaluated = peak(code, out.parent, "colorize.evaluate", str(out / "estimations.npy"), str(out / "img_names.txt"))
    return (*predicted, *evaluated)


def measure(codes: list, work: Path, count: int, size: tuple[int, int], repeats: int) -> list[dict]:
    """`predict_once` on a folder of `count` photos from each checkout in `codes` (name, path),
    alternating, `repeats` times; a result row per checkout, its medians printed."""
    make_photos(work / f"photos{count}", count, size)
    runs: dict[str, list[tuple[float, ...]]] = {name: [] for name, _ in codes}
    for i in range(repeats):
        for name, code in codes:
            runs[name].append(predict_once(code, work / "model.pt", work / f"photos{count}",
                                           work / f"out-{name}-{count}-{i}"))
    rows = []
    for name, samples in runs.items():
        mib, seconds, eval_mib, eval_seconds = (statistics.median(v) for v in zip(*samples))
        rows.append({"photos": count, "code": name, "peak_mib": mib, "seconds": seconds,
                     "evaluate_peak_mib": eval_mib, "evaluate_seconds": eval_seconds, "samples": samples})
        print(f"{count:4d} photos {size[0]}x{size[1]}  {name:10s} predict: peak {mib:6.0f} MiB {seconds:5.1f} s; "
              f"evaluate: peak {eval_mib:6.0f} MiB {eval_seconds:5.1f} s (medians of {repeats})", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.predict_memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commit", help="the earlier commit to compare with (none: this checkout alone)")
    parser.add_argument("--photos", type=int, nargs="+", default=[15, 45], help="folder sizes, in photos")
    parser.add_argument("--size", default="1024x768", help="each photo's WIDTHxHEIGHT")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("overrides", nargs="*", default=["model.layers=2"], help="the network, as train overrides")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with worktree(args.commit, work / "earlier") if args.commit else nullcontext(None) as tree:
            codes = [(args.commit, tree), ("now", ROOT)] if tree else [("now", ROOT)]
            make_checkpoint(work / "model.pt", args.overrides)
            results = [row for count in args.photos
                       for row in measure(codes, work, count, size, args.repeats)]  # type: ignore[arg-type]
    print(f"CPU: {cpu_class()}")
    out = ROOT / "outputs" / "benchmarks" / "predict_memory.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"commit": args.commit, "size": args.size, "overrides": args.overrides,
                               "cpu": cpu_class(), "results": results}, indent=1))


if __name__ == "__main__":
    main()
