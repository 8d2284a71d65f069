#!/usr/bin/env bash
# The device check for a lent GPU machine (not CI), in one call of at most 7.5 minutes:
#   run (device tool): bash benchmarks/gpu_check.sh [benchmarks.throughput arguments]
#                      carry: [".whl", ".gpudata"]     timeout_s: 480
# It installs the carried wheels (.whl/: the project's Python deps but torch, which the device has),
# checks the device, checks a fused group against its trials run separately (benchmarks/fused_check.py),
# times each training mode on the study's nets (benchmarks/throughput.py), packs everything into one
# archive, $OUT/gpu_check.tar.gz (with throughput.csv and fused_check.csv beside it), and prints a short
# table last. Then, if the call has time left (CHECK_BUDGET_S, 450 s by default, under the call's
# timeout_s of 480), today's `experiment=best` trains on the GPU, capped at BEST_MINUTES (1).
# GROUP_SIZES=0 skips the fused group sizes (benchmarks/group_sizes.py: one process, groups of 1 to 32 with the
# whole step one graph: about 30 s, estimated), STARTUP_PARTS=0 the start-up parts (benchmarks/startup_parts.py, ~1.5 min on a GPU), BEST_MINUTES=0
# experiment=best: a shorter call after the study (docs/gpu/README.md, "A lent session, in order").
# The timings stop (SIGINT) where CHECK_BUDGET_S would be passed, so the archive is always packed;
# throughput.csv keeps every mode timed by then. (On 2026-12-04 the call was killed at 420 s in its
# last mode and brought nothing back: the rows survive only in the device tool's output.)
# On CUDA, with no arguments, at 10 epochs on 2-conv k5 c8: eager, the whole step as CUDA graphs alone
# (graphs) against the forward-only graph that decided issue 24 on 2026-12-04 (fwdgraphs), and 16 trials
# as 16 graphed processes against 2 fused groups of 8, each group's whole step one graph (docs/gpu/README.md);
# arguments replace them, e.g. `--epochs 3 --modes eager nosync graphs seq4 procs4 fused4 fused8`.
# On a machine without CUDA it runs the same modes on the CPU, on 200 faces: a dry run of the script.
set -uo pipefail
. benchmarks/gpu_env.sh
budget=${CHECK_BUDGET_S:-450}
if [ "$device" != cuda ]; then extra=(--limit 200 --nets "2-conv k5 c8" --modes eager nosync graphs procs2 seq2 fused2 fused2x2)
  check_extra=(--limit 48 --epochs 3); startup_extra=(--procs 1 2 --limit 200); sizes_extra=(--limit 48 --sizes 1 2 --epochs 2)
elif [ $# -gt 0 ]; then extra=("$@"); check_extra=(); startup_extra=(); sizes_extra=()
else extra=(--epochs 10 --nets "2-conv k5 c8" --multi-nets "2-conv k5 c8"
            --modes eager graphs fwdgraphs procs16+graphs fused8x2+graphs); check_extra=(); startup_extra=(); sizes_extra=(); fi
if [ "$device" = cuda ] && python3 -c "import pytest" 2>/dev/null; then  # (the image has pytest)
  # CUDA graphs, and no training step waiting for the GPU (deselected: a test that runs the CLI from the tree)
  cuda_tests "not without_a_gpu"
fi
start=$SECONDS
python3 -m benchmarks.fused_check --device "$device" --out "$work/fused_check" "${check_extra[@]}" 2>&1 \
  | tee "$work/fused_check.log"
echo "fused check: $((SECONDS - start)) s" | tee -a "$work/gpu.txt"
if [ "${GROUP_SIZES:-1}" != 0 ]; then
  start=$SECONDS  # member-epochs per second by fused group size, the whole step one graph: fuse, or processes?
  python3 -m benchmarks.group_sizes --device "$device" --out "$work/group_sizes" "${sizes_extra[@]}" 2>&1 \
    | tee "$work/group_sizes.log"
  echo "group sizes: $((SECONDS - start)) s" | tee -a "$work/gpu.txt"
fi
if [ "${STARTUP_PARTS:-1}" != 0 ]; then
  start=$SECONDS  # where a process's start-up goes, alone and 16 at once (what held the modes back on 2026-12-04)
  python3 -m benchmarks.startup_parts --device "$device" --out "$work/startup_parts" "${startup_extra[@]}" 2>&1 \
    | tee "$work/startup_parts.log"
  echo "start-up parts: $((SECONDS - start)) s" | tee -a "$work/gpu.txt"
fi
start=$SECONDS
# stopped 20 s before the budget: packing takes a few seconds
timeout -s INT -k 10 $((budget - SECONDS - 20)) python3 -m benchmarks.throughput --device "$device" \
  --out "$work/throughput" "${extra[@]}" 2>&1 | tee "$work/throughput.log"
rc=${PIPESTATUS[0]}
echo "throughput modes: $((SECONDS - start)) s$([ "$rc" = 124 ] && echo ", stopped at the budget: the modes after the last row were not timed")" \
  | tee -a "$work/gpu.txt"
# today's experiment=best on the device, if the call has time left for it; on a CPU, one epoch of it on 32 faces
best_minutes=${BEST_MINUTES:-1}
if [ "$device" = cuda ]; then best_args=("trainer.max_minutes=$best_minutes"); else
  best_args=(data.limit=32 trainer.max_epochs=1 trainer.max_minutes=0); fi
if [ "$best_minutes" = 0 ]; then
  echo "experiment=best: skipped (BEST_MINUTES=0)" | tee -a "$work/gpu.txt"
elif [ "$device" != cuda ] || [ $((SECONDS + best_minutes * 60 + 45)) -le "$budget" ]; then
  start=$SECONDS
  python3 -m colorize.train experiment=best "trainer.device=$device" "${best_args[@]}" \
    "tracking.uri=sqlite:///$work/best/mlflow.db" "hydra.run.dir=$work/best/run" > "$work/best.log" 2>&1
  echo "experiment=best: exit $? after $((SECONDS - start)) s" | tee -a "$work/gpu.txt"
else
  echo "experiment=best: skipped ($SECONDS s used; it needs about $((best_minutes * 60 + 45)) s more)" | tee -a "$work/gpu.txt"
fi
# checkpoints and artifacts: large
rm -rf "$work/throughput/runs" "$work/throughput/sweeps" "$work/throughput/mlartifacts" "$work/run/mlartifacts" \
  "$work/best/mlartifacts" "$work"/best/run/*.pt
tar czf "$OUT/gpu_check.tar.gz" -C "$work" .
cp "$work/throughput/throughput.csv" "$work/fused_check/fused_check.csv" "$work/startup_parts/startup_parts.csv" \
  "$work/group_sizes/group_sizes.csv" "$OUT/" 2>/dev/null
echo "== archive: $OUT/gpu_check.tar.gz ($(du -h "$OUT/gpu_check.tar.gz" | cut -f1))"
grep -hE "^\| [0-9]+ \| " "$work/startup_parts.log" 2>/dev/null  # procs | part | median | max
grep -hE "^\| [0-9]+ \| [0-9]+ \| " "$work/group_sizes.log" 2>/dev/null  # size | epochs | first | epoch | member-epochs/s
grep -hE "^[a-z0-9+]+ \| |^skipped|stopped at the budget" "$work/throughput.log" "$work/gpu.txt"
grep -h "^fused vs separate" "$work/fused_check.log" || echo "fused vs separate: no verdict (see fused_check.log)"
grep -h "^experiment=best" "$work/gpu.txt"
grep -ho "best: best epoch .*accuracy [0-9.]*" "$work/best.log" 2>/dev/null
true  # (the exit status is not the last grep's: with BEST_MINUTES=0 there is no best.log)
