#!/usr/bin/env bash
# One short check of the CUDA path on a GPU machine (about 5-8 minutes on one H100):
#   1. the GPU, as nvidia-smi and torch see it;
#   2. four PACS AlexNets trained for 2 epochs each on CUDA, written to a temporary folder (never
#      checkpoints/); one JSON line per model with images/s and held-out accuracy from its card;
#   3. the quick benchmark on CUDA (python -m bench --quick --device cuda --json);
#   4. feature visualisation's batching row at full size on CUDA: 32 channels of conv5 in one
#      batch against one at a time, at 227 and 64 px (what 2 CPU cores cannot show).
# Everything printed also goes to RESULTS/gpu_check.log (RESULTS: the first argument, default
# ./gpu-results), beside the cards (RESULTS/cards/) and the benchmark's JSON (RESULTS/bench.json).
#
# Needs only this repository, its requirements.txt installed, and the data root in
# $INTERP_DATA_DIR (default ./data) with PACS/ (and cifar10/ for the benchmark's training rows).
# Usage: bash bench/gpu_check.sh [RESULTS]
set -uo pipefail

RESULTS_ARG="${1:-./gpu-results}"
mkdir -p "$RESULTS_ARG/cards"
RESULTS="$(cd "$RESULTS_ARG" && pwd)"
cd "$(dirname "$0")/.."  # the repository root: python -m interp and python -m bench run from here
LOG="$RESULTS/gpu_check.log"
: > "$LOG"
exec > >(tee -a "$LOG") 2>&1

EPOCHS=2
DEADLINE_S="${GPU_CHECK_DEADLINE_S:-470}"  # every step's time limit is cut to what is left of this
MODELS=(alexnet_pacs_domain alexnet_pacs_class alexnet_large_kernel_pacs_domain alexnet_avgpool_pacs_domain)
export INTERP_DATA_DIR="${INTERP_DATA_DIR:-./data}"
export PYTHONUNBUFFERED=1  # lines reach the log as they are printed
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
FAILED=0

limit() {  # seconds a step may take: its own cap, or less where the deadline is nearer (at least 5)
    local cap=$1 rest=$((DEADLINE_S - SECONDS))
    (( rest < cap )) && cap=$rest
    (( cap < 5 )) && cap=5
    echo "$cap"
}

echo "== gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ), code $(git describe --always --dirty 2>/dev/null || echo unknown)"
echo "data root: $INTERP_DATA_DIR"
if [ ! -d "$INTERP_DATA_DIR/PACS" ]; then
    echo "error: no PACS/ under $INTERP_DATA_DIR; set INTERP_DATA_DIR to the data root" >&2
    exit 2
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python - <<'EOF' || exit 2
import sys, torch
from interp.hardware import cuda_name
if not torch.cuda.is_available():
    sys.exit(f"error: torch {torch.__version__} sees no CUDA GPU (a CPU-only build of torch, or no driver)")
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, GPU: {cuda_name()}, "
      f"bf16 supported: {torch.cuda.is_bf16_supported()}")
EOF

echo "== training on cuda, $EPOCHS epochs each"
for name in "${MODELS[@]}"; do
    start=$SECONDS
    if timeout "$(limit 150)" python -m interp train "$name" --epochs "$EPOCHS" --device cuda --no-progress \
            --out "$WORK/$name.safetensors" > "$WORK/$name.stdout"; then
        cp "$WORK/$name.json" "$RESULTS/cards/"
        python - "$WORK/$name.json" "$((SECONDS - start))" <<'EOF'
import json, sys
card = json.load(open(sys.argv[1]))
t, m = card["throughput"], card["metrics"]
print(json.dumps({
    "model": card["name"], "device": card["device"], "gpu": card["hardware"]["gpu"], "precision": card["precision"],
    "epochs": len(card["history"]["epochs"]), "train_loop_images_per_s": t["train_loop_images_per_s"],
    "bare_loop_images_per_s": t["bare_loop_images_per_s"], "loop_over_bare": t["ratio"],
    "held_out_accuracy": m["accuracy"], "split": m["split"], "n": m["n"], "wall_time_s": card["wall_time_s"],
    "process_s": int(sys.argv[2])}))
EOF
    else
        echo "{\"model\": \"$name\", \"error\": \"training failed or timed out (exit $?)\"}"
        FAILED=1
    fi
done

echo "== python -m bench --quick --device cuda --json"
if ! timeout "$(limit 300)" python -m bench --quick --device cuda --json --no-progress --out "$RESULTS/bench.json"; then
    echo "error: the benchmark failed or timed out" >&2
    FAILED=1
fi

echo "== feature visualisation: 32 channels in one batch against one at a time, on cuda"
if ! timeout "$(limit 120)" python - "$RESULTS/feature_vis.json" <<'EOF'
import json, sys, torch
from bench.run import Settings, batching_rows
rows = batching_rows(Settings(), torch.device("cuda"))
for r in rows:
    print(json.dumps({k: r[k] for k in ("size", "ours_ms", "one_at_a_time_ms", "speedup", "bare_pass_speedup")}))
json.dump(rows, open(sys.argv[1], "w"), indent=1)
EOF
then
    echo "error: the feature-visualisation row failed or timed out" >&2
    FAILED=1
fi

echo "== done in ${SECONDS}s; results in $RESULTS"
exit $FAILED
