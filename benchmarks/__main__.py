"""Run the benchmark suite, print a table and write outputs/benchmarks/results.json.

    python -m benchmarks                 # everything, medians of 3 runs
    python -m benchmarks --only sweep    # one benchmark: epoch conv compile tuning overhead startup sweep
                                         # pruning trial study gpu
"""

from __future__ import annotations

import argparse

from benchmarks import loop, overhead, study, sweeps, trials, tuning
from benchmarks.common import machine, save, table

BENCHES = {
    "epoch": lambda a: loop.epoch_times(a.repeats),
    "conv": lambda a: loop.conv_shapes(a.repeats),
    "compile": lambda a: loop.compiled(a.repeats),
    "tuning": lambda a: tuning.tuning(a.repeats),
    "overhead": lambda a: overhead.overhead(a.repeats),
    "startup": lambda a: overhead.startup(a.repeats),
    "sweep": lambda a: sweeps.sweep_throughput(a.repeats),
    "pruning": lambda a: sweeps.pruning(),
    "trial": lambda a: trials.trial_cost(a.repeats),
    "study": lambda a: study.study_epochs(a.repeats),
    "gpu": lambda a: gpu_throughput(),
}


def gpu_throughput() -> list:
    """The GPU check's fused-against-separate check and modes (benchmarks/fused_check.py, throughput.py) on
    CUDA; without CUDA it says so and does nothing."""
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device here: the GPU check needs one (benchmarks/gpu_check.sh on a lent machine; "
              "`bash benchmarks/gpu_check.sh` dry-runs it on the CPU)")
        return []
    from benchmarks import fused_check, throughput

    fused_check.main(["--device", "cuda"])
    throughput.main(["--device", "cuda"])
    return []


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHES), help="benchmarks to run (default: all)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement (median reported)")
    args = parser.parse_args()
    print(f"Machine: {machine()}", flush=True)
    rows = []
    for name in args.only or BENCHES:
        print(f"== {name}", flush=True)
        new = BENCHES[name](args)
        print(table(new), flush=True)
        rows += new
    print(f"\nMachine: {machine()}\n")  # the CPU class (ISA) every figure belongs to
    print(table(rows))
    print(f"\nwritten to {save(rows)}")


if __name__ == "__main__":
    main()
