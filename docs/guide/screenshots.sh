#!/usr/bin/env bash
# The two screenshots of docs/guide/ (headless Chromium; Debian: apt-get install chromium), from a
# small real sweep in a fresh folder:
#   mlflow-ui.png  the link a sweep prints at its end, opened in a plain `mlflow ui`: "Model training"
#                  mode, the runs table with the sweep's parent run and its trials
#   report.png     that sweep's report.html (`colorize-report`)
#   bash docs/guide/screenshots.sh        (about 3 minutes on 2 cores; needs the course faces)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
cd "$work"
colorize-train sweep=lr data=faces data.limit=200 trainer.max_epochs=3 2>&1 | tee sweep.log | tail -n 3
link=$(grep -o "http://127.0.0.1:5000/#/experiments/[^ ]*" sweep.log | tail -n 1)
colorize-report --name lr --out "$work/report" > report.log 2>&1
port=5000
mlflow ui --host 127.0.0.1 --port $port > ui.log 2>&1 &
ui=$!
trap 'kill $ui 2>/dev/null' EXIT
for _ in $(seq 60); do curl -fs "http://127.0.0.1:$port/health" > /dev/null && break; sleep 1; done
shot() {  # url, file
  chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,900 \
    --virtual-time-budget=20000 --screenshot="$2" "$1" 2>> chromium.log
}
shot "$link" "$here/mlflow-ui.png"
shot "file://$work/report/lr/report.html" "$here/report.png"
echo "the printed link: $link"
echo "screenshots: $here/mlflow-ui.png, $here/report.png (work folder $work)"
