#!/usr/bin/env bash
# The device check for a lent GPU machine (not CI), in one call of at most ~5 minutes:
#   run (device tool): bash benchmarks/gpu_check.sh     carry: [".whl", ".gpudata"]
# It installs the carried wheels (.whl/: the project's Python deps but torch, which the device has),
# checks the device, times each training mode on the study's nets (benchmarks/throughput.py), packs
# everything into one archive, $OUT/gpu_check.tar.gz, and prints a short table last.
# On a machine without CUDA it runs the same modes on the CPU, on 200 faces: a dry run of the script.
set -uo pipefail
. benchmarks/gpu_env.sh
if [ "$device" = cuda ]; then extra=()
else extra=(--limit 200 --nets "2-conv k5 c8" --modes eager nosync graphs procs2 seq2 fused2 fused2x2); fi
if [ "$device" = cuda ] && python3 -c "import pytest" 2>/dev/null; then  # (the image has pytest)
  # importlib mode: colorize from the wheel, not the tree (the deselected test runs the CLI from the tree)
  python3 -m pytest -q -p no:cacheprovider --import-mode=importlib --rootdir "$tree" -k "not without_a_gpu" \
    "$tree/tests/training/test_graphs.py" 2>&1 | tail -3 | tee "$work/graphs_test.txt"
fi
start=$SECONDS
python3 -m benchmarks.throughput --device "$device" --out "$work/throughput" "${extra[@]}" 2>&1 | tee "$work/throughput.log"
echo "throughput modes: $((SECONDS - start)) s" | tee -a "$work/gpu.txt"
rm -rf "$work/throughput/runs" "$work/throughput/sweeps" "$work/throughput/mlartifacts"  # checkpoints, samples: large
tar czf "$OUT/gpu_check.tar.gz" -C "$work" .
cp "$work/throughput/throughput.csv" "$OUT/" 2>/dev/null
echo "== archive: $OUT/gpu_check.tar.gz ($(du -h "$OUT/gpu_check.tar.gz" | cut -f1))"
tail -n 20 "$work/throughput.log" | grep -E "^\||skipped"
