#!/usr/bin/env bash
# The device check for a lent GPU machine (not CI), in one call of at most ~5 minutes:
#   run (device tool): bash benchmarks/gpu_check.sh     carry: [".whl", ".gpudata"]
# It installs the carried wheels (.whl/: the project's Python deps but torch, which the device has),
# checks the device, times each training mode on the study's nets (benchmarks/throughput.py), packs
# everything into one archive, $OUT/gpu_check.tar.gz, and prints a short table last.
# On a machine without CUDA it runs the same modes on the CPU, on 200 faces: a dry run of the script.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
work=$(mktemp -d)
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "wheel install failed"; exit 1; }
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
[ -d .gpudata ] && export COLORIZE_FACES_ROOT=$PWD/.gpudata
if python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  device=cuda; extra=()
  nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv | tee "$work/gpu.txt"
else
  device=cpu; extra=(--limit 200 --nets "2-conv k5 c8" --modes eager nosync graphs procs2 seq2 fused2 fused2x2)
  echo "no CUDA device: a dry run on the CPU (200 faces, one net)" | tee "$work/gpu.txt"
fi
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cpu', torch.backends.cpu.get_cpu_capability())" | tee -a "$work/gpu.txt"
if [ "$device" = cuda ] && python3 -c "import pytest" 2>/dev/null; then  # (carry pytest's wheel for this)
  python3 -m pytest -q -p no:cacheprovider tests/training/test_graphs.py 2>&1 | tail -3 | tee "$work/graphs_test.txt"
fi
start=$SECONDS
python3 -m benchmarks.throughput --device "$device" --out "$work/throughput" "${extra[@]}" 2>&1 | tee "$work/throughput.log"
echo "throughput modes: $((SECONDS - start)) s" | tee -a "$work/gpu.txt"
rm -rf "$work/throughput/runs" "$work/throughput/sweeps" "$work/throughput/mlartifacts"  # checkpoints, samples: large
tar czf "$OUT/gpu_check.tar.gz" -C "$work" .
cp "$work/throughput/throughput.csv" "$OUT/" 2>/dev/null
echo "== archive: $OUT/gpu_check.tar.gz ($(du -h "$OUT/gpu_check.tar.gz" | cut -f1))"
tail -n 20 "$work/throughput.log" | grep -E "^\||skipped"
