#!/usr/bin/env bash
# Makes, on this machine, what a device call carries (the device reaches no package registry):
#   .whl/      the wheels of the project's dependencies that the device image lacks (torch excluded),
#              and colorize's own (for its entry points: benchmarks/gpu_env.sh)
#   .gpudata/  the course faces' train and val images (COLORIZE_FACES_ROOT on the device), and SOURCE:
#              the commit they go with (the device copy has no git history for the run tags to read)
# then prints their sizes against the 64 MiB a call carries. Run it first in a session lent a GPU:
#   bash benchmarks/gpu_prepare.sh && run: bash benchmarks/gpu_check.sh  carry: [".whl", ".gpudata"]
# The image's package list is the device tool's KINDS.md ("Python packages already there"): a
# dependency named there is left out (it is "carry one only for another version").
#   --without-mlflow-ui   leaves out the `mlflow` wheel (11.7 MiB: the UI's JavaScript, a model catalog);
#                         mlflow-skinny, which it depends on, has all the code colorize runs (sqlite
#                         store, migrations, client). For a carry that needs the room (.gpustore/).
set -euo pipefail
without_ui=false
case "${1:-}" in
  "") ;;
  --without-mlflow-ui) without_ui=true ;;
  *) echo "colorize: error: gpu_prepare.sh takes no argument but --without-mlflow-ui, not '$1'"; exit 2 ;;
esac
kinds=${KINDS_MD:-/work/.library/device/KINDS.md}
faces=${COLORIZE_FACES_ROOT:-$(cd .. && pwd)/shared/data/ceng483-hw3-dataset}
tmp=$(mktemp -d)
# the dependencies of pyproject.toml but torch, which the device has in its CUDA build
mapfile -t deps < <(python3 - <<'EOF'
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
print("\n".join(d for d in deps if re.split(r"[<>=!~ ;\[]", d, maxsplit=1)[0].lower() != "torch"))
EOF
)
python3 -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform any -d "$tmp" "${deps[@]}"
mapfile -t have < <(python3 - "$kinds" <<'EOF'
import re, sys
text = open(sys.argv[1]).read() if len(sys.argv) > 1 else ""
listed = re.search(r"Packages: (.*?)\.\s*$", text.split("## Python packages already there")[-1], re.S)
for name in (listed.group(1).split(",") if listed else []):
    print(re.sub(r"[-_.]+", "-", name.strip().lower()))
EOF
)
[ ${#have[@]} -gt 0 ] || echo "warning: no package list in $kinds: carrying every wheel"
rm -rf .whl && mkdir .whl
for wheel in "$tmp"/*.whl; do
  name=$(basename "$wheel" | cut -d- -f1 | tr '[:upper:]_.' '[:lower:]--')
  [ "$name" = torch ] && continue
  [ "$name" = mlflow ] && $without_ui && continue
  printf '%s\n' "${have[@]}" | grep -qx -- "$name" || cp "$wheel" .whl/
done
python3 -m pip wheel -q --no-deps -w .whl . && rm -rf build
bash benchmarks/tree_hash.sh > .whl/TREE  # the tree that wheel is (gpu_env.sh compares)
rm -rf "$tmp" .gpudata && mkdir -p .gpudata/train .gpudata/val
cp -r "$faces/train/images" .gpudata/train/ && cp -r "$faces/val/images" .gpudata/val/
echo "commit $(git rev-parse HEAD)$(git diff --quiet HEAD -- colorize conf sweeps benchmarks || echo ' (with uncommitted changes)')" \
  > .gpudata/SOURCE
# What a call sends counts against 64 MiB: the tree (tracked and untracked-not-ignored files) and the
# carried folders, as bytes (du's default, blocks, counts the 6,500 small faces at 4 KiB each: 26 MiB for 11)
mib() { echo $(( ($1 + 1048575) / 1048576 )); }
tree_b=$(git ls-files -co --exclude-standard -z | du -cb --files0-from=- | tail -1 | cut -f1)
whl_b=$(du -sb .whl | cut -f1); data_b=$(du -sb .gpudata | cut -f1)
echo "== .whl: $(ls .whl/*.whl | wc -l) wheels, $(mib "$whl_b") MiB; .gpudata: $(mib "$data_b") MiB; the tree: $(mib "$tree_b") MiB"
total=$(mib $((tree_b + whl_b + data_b)))
echo "== a call with carry [\".whl\", \".gpudata\"] sends ${total} MiB of the 64 it may (more: .gpustore)"
[ "$total" -le 64 ] || { echo "colorize: error: a call would send ${total} MiB, over 64 MiB (--without-mlflow-ui: 11.5 less)"; exit 1; }
