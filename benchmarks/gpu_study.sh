#!/usr/bin/env bash
# Issue 25 on a lent GPU: the study as published, report included, in one device call (at most 9 minutes):
#   bash benchmarks/gpu_prepare.sh     (here, first: the wheels and faces a call carries)
#   run (device tool): bash benchmarks/gpu_study.sh [colorize-study arguments]
#                      carry: [".whl", ".gpudata"]     timeout_s: 570
# It runs the defaults below (100 epochs with the study's early stopping, 3 seeds, the full faces, every
# preset, and the launcher issue 24 measured fastest: `hydra/launcher=fused`, whose auto on CUDA runs
# min(16, cores) single trials at once as CUDA graphs; the study's auto `--jobs` then runs the five
# grid presets at once, those 16 split between them); arguments are added after them (a later value
# of the same key wins), e.g. `--presets layers,kernel_size,kernels` for one part of a split study.
# Before the study: the CUDA graph tests, and (STUDY_FUSE, below) whether fused groups beat single trials.
# The MLflow store and the Optuna study live in .gpustore/; the study is stopped (SIGINT: its runs end
# KILLED, none left RUNNING) $STUDY_BUDGET_S seconds after the script started (install, tests and probe
# included), so that the archive is packed within the call.
# A stopped study leaves .gpustore/ in the archive: a later call that carries it skips the presets done.
# Back in $OUT/gpu_study.tar.gz: gpu.txt, study.log, the report folder (report.md, results.csv,
# findings.csv, PNGs; not report.html, which inlines them) and .gpustore/{mlflow,optuna}.db (not the
# runs' artifacts). The last lines printed are the report's per-preset wall times.
# Without CUDA it dry-runs the same steps on the CPU at a tiny scale (64 faces, 2 epochs, 2 seeds), the
# grid presets at once as on CUDA (`--jobs 5`: one job each; CUDA's auto is 16, split 2/2/3/5/4).
set -uo pipefail
case ${STUDY_FUSE:-auto} in auto|0|1) ;; *) echo "colorize: error: STUDY_FUSE=$STUDY_FUSE is invalid: auto, 1 or 0"; exit 2;; esac
. benchmarks/gpu_env.sh
budget=${STUDY_BUDGET_S:-480}
store=$tree/.gpustore
if [ "$device" = cuda ]; then
  args=(data=faces trainer.max_epochs=100 --seeds 3 --search-trials 20 --search-override trainer.max_minutes=1
        hydra/launcher=fused "$@")
else
  args=(data=faces data.limit=64 trainer.max_epochs=2 --seeds 2 --search-trials 2 hydra/launcher=fused --jobs 5 "$@")
fi
if [ "$device" = cuda ] && python3 -c "import pytest" 2>/dev/null; then
  # preflight (~20 s): the CUDA graphs the study will replay, against eager training; if the whole-step
  # graphs (training/step_graphs.py, not yet run on a GPU when this was written) fail their check, the
  # study captures the forward and backward only, as measured on 2026-12-04
  cuda_tests "graphed_run or graphed_fused or whole_step"
  if grep -q " passed" "$work/graphs_test.txt" && ! grep -qE "failed|error" "$work/graphs_test.txt"; then
    echo "preflight: CUDA graph tests passed: the whole step is captured" | tee -a "$work/gpu.txt"
    graphs_ok=1
  else
    args+=(trainer.cuda_graphs=forward)
    echo "preflight: CUDA graph tests FAILED: trainer.cuda_graphs=forward for the study" | tee -a "$work/gpu.txt"
  fi
fi
# Processes or fused groups (docs/gpu/README.md, "Processes or fused groups"): STUDY_FUSE=auto (the default)
# times one group of 1 and one of 15 with the whole step captured (~15 s) and fuses if the 15 train at
# least twice the member-epochs per second; 1 fuses, 0 does not. Fused: groups of up to 16 (the seeds of a
# configuration; the lr preset's depths), each group's whole step one graph (trainer.cuda_graphs=on); the
# search, whose nets and optimizers vary, keeps single trials at auto, as measured on 2026-12-04.
fuse=${STUDY_FUSE:-auto}
if [ "$device" = cuda ] && [ "$fuse" != 0 ] && [ "${graphs_ok:-0}" != 1 ]; then
  fuse=0  # the whole step's tests failed or did not run: no fused groups, whatever STUDY_FUSE says
elif [ "$device" = cuda ] && [ "$fuse" = auto ]; then
  fuse=0
  timeout 120 python3 -m benchmarks.group_sizes --device cuda --sizes 1 15 --epochs 3 --verdict \
    --out "$work/group_sizes" 2>&1 | tee "$work/group_sizes.log"
  grep -q "^verdict: fuse" "$work/group_sizes.log" && fuse=1
fi
if [ "$device" = cuda ] && [ "$fuse" = 1 ]; then
  args+=(hydra.launcher.max_group=16 trainer.cuda_graphs=on
         --search-override trainer.cuda_graphs=auto --search-override hydra.launcher.max_group=1)
fi
echo "processes or fused groups: STUDY_FUSE=${STUDY_FUSE:-auto} -> $([ "$fuse" = 1 ] && echo "fused groups of up to 16" \
  || echo "the launcher's auto")$([ "$device" = cuda ] && [ "${graphs_ok:-0}" != 1 ] && echo " (the graph tests did not pass)")" \
  | tee -a "$work/gpu.txt"
mkdir -p "$store"
export MLFLOW_TRACKING_URI=sqlite:///$store/mlflow.db
args+=("hydra.sweeper.storage=sqlite:///$store/optuna.db")  # the search's Optuna study, beside the store
left=$((budget - SECONDS))  # the budget counts from the script's start: install, preflight and probe included
echo "colorize-study ${args[*]} (stopped at ${budget} s from the start: ${left} s left)" | tee -a "$work/gpu.txt"
start=$SECONDS
# timeout signals the whole process group (the presets' processes and their workers too)
timeout -s INT -k 60 "$left" python3 -m colorize.study "${args[@]}" 2>&1 | tee "$work/study.log"
rc=${PIPESTATUS[0]}
# a study killed outright (timeout's -k) forwards nothing to its presets, which run in sessions of their
# own: stop any still running as Ctrl-C would (their process groups: launcher and workers), before packing
for pid in $(pgrep -f "colorize.train -m"); do kill -INT -- "-$pid" 2>/dev/null; done
for _ in $(seq 60); do pgrep -f "colorize.train -m" >/dev/null || break; sleep 1; done
echo "study: exit $rc after $((SECONDS - start)) s$([ "$rc" = 124 ] && echo " (stopped at the budget)")" | tee -a "$work/gpu.txt"
[ -d outputs/report/study ] && cp -r outputs/report/study "$work/report" && rm -f "$work/report/report.html"
# the stores, not their artifacts (each trial's samples and checkpoints: tens of MiB; the report has its figures)
stores=(); for db in mlflow.db optuna.db; do [ -f "$store/$db" ] && stores+=(".gpustore/$db"); done
[ ${#stores[@]} -gt 0 ] && stores=(-C "$tree" "${stores[@]}")  # (none: a trailing -C is an error to tar)
tar czf "$OUT/gpu_study.tar.gz" -C "$work" gpu.txt study.log $([ -f "$work/graphs_test.txt" ] && echo graphs_test.txt) \
  $([ -d "$work/group_sizes" ] && echo group_sizes group_sizes.log) \
  $([ -d "$work/report" ] && echo report) $([ -d "$work/run/outputs/study" ] && echo run/outputs/study) "${stores[@]}"
cp "$work/report/results.csv" "$OUT/" 2>/dev/null
size=$(du -m "$OUT/gpu_study.tar.gz" | cut -f1)
echo "== archive: $OUT/gpu_study.tar.gz (${size} MiB$([ "$size" -ge 16 ] && echo ', OVER the 16 MiB the issue allows'))"
grep -E "^\| (sweep|---|[a-z_]+ \|)" "$work/report/report.md" 2>/dev/null | head -8
tail -n 1 "$work/gpu.txt"
