#!/usr/bin/env bash
# A headless Chromium screenshot of what a plain `mlflow ui` shows for the project's experiment:
# it must open on the runs table (colorize tags its experiments mlflow.experimentKind=
# custom_model_development), not on MLflow 3's GenAI overview.
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
  "http://127.0.0.1:$port/#/experiments/$exp" 2> /tmp/chromium.log
echo "screenshot: $here/mlflow_ui.png (experiment $exp)"
