#!/usr/bin/env bash
# The device check for a lent GPU machine (not part of CI): precision=auto on CUDA, the best recipe
# end to end, fp32 vs bf16 epoch time, and a small sweep. Expects the project's Python deps as
# wheels in .whl/ and the course faces in .gpudata/ (both git-ignored, carried by the device tool).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 COLORIZE_FACES_ROOT=$PWD/.gpudata
nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 - <<'PY' | tee -a "$OUT/gpu.txt"
import torch
from colorize.training.precision import probe, bf16_is_native, resolve_precision
dev = torch.device("cuda")
hw = probe(dev)
print("torch", torch.__version__, "capability", hw.cuda_capability, "native bf16", bf16_is_native(hw),
      "auto ->", resolve_precision("auto", dev), "| torch.cuda.is_bf16_supported():", torch.cuda.is_bf16_supported())
PY
uri="sqlite:////tmp/gpu-mlflow.db"
run() {
  echo "== $*"; local start=$SECONDS
  python3 -m colorize.train "$@" tracking.uri=$uri 2>&1 | grep -v "it/s\]" | tail -30
  echo "wall $((SECONDS - start)) s"
}
run experiment=best trainer.precision=fp32 trainer.max_minutes=0 trainer.max_epochs=3 tracking.run_name=best-fp32-3ep 2>&1 | tee "$OUT/fp32.log"
run experiment=best trainer.max_minutes=0 trainer.max_epochs=3 tracking.run_name=best-auto-3ep 2>&1 | tee "$OUT/auto3.log"
run -m sweep=lr data=faces data.limit=500 trainer.max_epochs=3 2>&1 | tee "$OUT/sweep.log"
run experiment=best tracking.run_name=best-auto 2>&1 | tee "$OUT/best.log"
python3 - <<'PY' | tee "$OUT/runs.txt"
from mlflow.tracking import MlflowClient
c = MlflowClient(tracking_uri="sqlite:////tmp/gpu-mlflow.db")
for exp in c.search_experiments():
    for r in c.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"]):
        m, t, p = r.data.metrics, r.data.tags, r.data.params
        print(r.info.run_id, r.info.run_name, r.info.status, "device", t.get("device"), "precision", t.get("precision"),
              "N", p.get("trainer.budget_epochs"), "best_acc", round(m.get("best_val_margin12_accuracy", float("nan")), 4),
              "train_s", round(m.get("train_seconds", float("nan")), 1), "epochs", m.get("stopped_epoch"))
PY
