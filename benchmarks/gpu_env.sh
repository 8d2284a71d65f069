# Sourced by the device scripts (gpu_check.sh, gpu_study.sh) at the repository root of a device copy.
# Sets OUT, work, tree (this copy's root), device (cuda|cpu), PYTHONPATH and COLORIZE_FACES_ROOT,
# installs the carried wheels, writes the machine's facts to $work/gpu.txt, and ends in $work/run.
# colorize runs from its wheel in .whl/ (made from this tree by gpu_prepare.sh): a bare source tree
# lacks the packages colorize.conf and colorize.sweeps (pyproject.toml maps them onto conf/ and sweeps/)
# and the entry points by which Hydra finds the fused launcher and the Optuna sweeper. The commands
# run in $work/run, not here: `python -m` puts its folder first on sys.path, and here that would be
# the bare tree's colorize; the tree stays on PYTHONPATH, after the wheel, for benchmarks/ and tests/.
OUT=$(realpath -m "${OUT:-/tmp/gpu-out}"); mkdir -p "$OUT"
work=$(mktemp -d); tree=$PWD
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$tree
if ls .whl/*.whl >/dev/null 2>&1; then
  # the dependency wheels are Python 3.12's (the device's); elsewhere (a dry run) only colorize's is installed
  if python3 -c "import sys; sys.exit(sys.version_info[:2] != (3, 12))"; then wheels=(.whl/*.whl)
  else wheels=(.whl/colorize-*.whl); echo "not Python 3.12: installing only ${wheels[*]}"; fi
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "${wheels[@]}" || { echo "wheel install failed"; exit 1; }
fi
if [ "$(cat .whl/TREE 2>/dev/null)" != "$(bash benchmarks/tree_hash.sh)" ]; then  # the wheel is not this tree's: build it here
  echo "colorize's wheel is missing or older than this tree: installing the tree"
  python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --upgrade --target /tmp/site . \
    || { echo "colorize: error: cannot install this tree: run benchmarks/gpu_prepare.sh again"; exit 1; }
fi
# the faces: carried (.gpudata), else $COLORIZE_FACES_ROOT, else the shared folder beside this tree (a dry
# run in a checkout that gpu_prepare.sh has not filled: the commands run in $work/run, where the default
# ../shared/data does not reach)
if [ -d .gpudata ]; then export COLORIZE_FACES_ROOT=$tree/.gpudata
elif [ -z "${COLORIZE_FACES_ROOT:-}" ] && [ -d ../shared/data/ceng483-hw3-dataset ]; then
  COLORIZE_FACES_ROOT=$(cd ../shared/data/ceng483-hw3-dataset && pwd); export COLORIZE_FACES_ROOT
fi
if python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  device=cuda
  nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv | tee "$work/gpu.txt"
else
  device=cpu
  echo "no CUDA device: a dry run on the CPU" | tee "$work/gpu.txt"
fi
[ -f .gpudata/SOURCE ] && tee -a "$work/gpu.txt" < .gpudata/SOURCE
echo "OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset} (trainer.num_threads=0 takes it when set)" | tee -a "$work/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cpu', torch.backends.cpu.get_cpu_capability())" | tee -a "$work/gpu.txt"
# The CUDA graph and device-sync tests, from the tree, colorize from the wheel (importlib mode); $1: pytest's
# -k expression. Their last lines go to $work/graphs_test.txt. Called by gpu_check.sh and gpu_study.sh.
cuda_tests() {
  python3 -m pytest -q -p no:cacheprovider --import-mode=importlib --rootdir "$tree" -k "$1" \
    "$tree/tests/training/test_graphs.py" "$tree/tests/training/test_device_sync.py" 2>&1 | tail -3 \
    | tee "$work/graphs_test.txt"
}
mkdir -p "$work/run" && cd "$work/run"
