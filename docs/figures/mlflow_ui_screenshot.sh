#!/usr/bin/env bash
# A headless Chromium screenshot of the project's experiment in a plain `mlflow ui`, at the link
# that opens its runs table (#/experiments/<id>/runs; MLflow 3.17's bare experiment link opens its
# GenAI overview, whatever the experiment's mlflow.experimentKind tag).
#   bash docs/figures/mlflow_ui_screenshot.sh [folder with mlflow.db]   (needs Debian's `chromium`)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
store=${1:-.}
cd "$store"
port=5077
mlflow ui --host 127.0.0.1 --port $port > /tmp/mlflow-ui.log 2>&1 &
ui=$!
trap 'kill $ui 2>/dev/null' EXIT
for _ in $(seq 60); do curl -fs "http://127.0.0.1:$port/health" > /dev/null && break; sleep 1; done
exp=$(python -c "
from mlflow.tracking import MlflowClient
print(MlflowClient(tracking_uri='sqlite:///mlflow.db').get_experiment_by_name('colorize').experiment_id)")
chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,800 \
  --virtual-time-budget=20000 --screenshot="$here/mlflow_ui.png" \
  "http://127.0.0.1:$port/#/experiments/$exp/runs" 2> /tmp/chromium.log
echo "screenshot: $here/mlflow_ui.png (experiment $exp)"
