#!/usr/bin/env bash
# scripts/train-accel.sh OUT_DIR [--budget-s S] [--tiny]
#
# The three CIFAR-10 trainings of the accuracy study, run concurrently (one process each) on
# the machine's accelerator (--device auto: CUDA when present, else CPU), inside S seconds of
# wall clock (default 480, under the 9 minutes one device call allows):
#   A  cifar-binarynet width 1, epochs fitted to the budget; then latent channel pruning in
#      64-channel multiples to 40% fewer binary ops (sensitivity allocation) and a fine-tune
#      of the pruned network for the time left;
#   B  birealnet18 (CIFAR stem) with float data flow;
#   C  birealnet18 (CIFAR stem) with BNN-Clip blocks (int8 data flow).
# Every network is exported to .onebit and evaluated by the engine (`onebit eval`).
# OUT_DIR receives: *.pt checkpoints, *.onebit models, *.train.json (per-epoch accuracy),
# *.eval.json (engine accuracy), *.export.json, prune.json, logs/, device.json (GPU name,
# CPU, torch) and summary.json (one row per network).
# --tiny: the same pipeline on a few hundred images and narrow networks (CPU, about a minute;
# default budget 80 s, channel multiples of 8 as the narrow layers have fewer than 64).
set -euo pipefail

usage() { echo "usage: $0 OUT_DIR [--budget-s S] [--tiny]" >&2; exit 2; }
[ $# -ge 1 ] || usage
OUT=$1; shift
case "$OUT" in -*) usage ;; esac
BUDGET=
TINY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --budget-s) [ $# -ge 2 ] || usage; BUDGET=$2; shift 2 ;;
    --tiny) TINY=1; shift ;;
    *) echo "$0: unknown option $1" >&2; usage ;;
  esac
done
[ -n "$BUDGET" ] || { [ "$TINY" = 1 ] && BUDGET=80 || BUDGET=480; }
if ! [[ "$BUDGET" =~ ^[0-9]+$ ]] || [ "$BUDGET" -lt 20 ]; then
  echo "$0: --budget-s must be a whole number of seconds >= 20, got '$BUDGET'" >&2; exit 2
fi

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/scripts/env.sh"
PY=${ONEBIT_PYTHON:-$ROOT/.venv/bin/python}
ONEBIT=("$PY" -c "import sys; from onebit.cli import main; sys.argv[0] = 'onebit'; main()")
mkdir -p "$OUT/logs"
OUT="$(cd "$OUT" && pwd)"
START=$(date +%s)
DEADLINE=$((START + BUDGET))

if [ "$TINY" = 1 ]; then
  DATA=(--limit-train 256 --limit-test 256)
  EVAL_LIMIT=(--limit 256)
  PRUNE_DATA=(--val-size 128 --limit-test 256)
  WIDTH_A=0.125; WIDTH_B=0.0625; MULTIPLE=8
  BATCH=64; LR=2e-3; FT_LR=2e-4; MAX_EPOCHS=2
  THREADS=(--threads 1); ENGINE_THREADS=(--threads 1)
  RESERVE=$((BUDGET / 6))          # export + engine eval after the last training
  FT_MIN=6                         # seconds kept for the fine-tune of the pruned network
  BASE_SHARE=30                    # % of the time before the reserve for the baseline
else
  DATA=()
  EVAL_LIMIT=()
  PRUNE_DATA=(--val-size 2000)
  WIDTH_A=1; WIDTH_B=1; MULTIPLE=64
  BATCH=256; LR=2e-3; FT_LR=2e-4; MAX_EPOCHS=400
  THREADS=(); ENGINE_THREADS=(--threads 4)
  RESERVE=$((BUDGET * 3 / 20))
  FT_MIN=$((BUDGET / 6))
  BASE_SHARE=45
fi
TRAIN_OPTS=(--dataset cifar10 --device auto --batch-size "$BATCH" --nondeterministic --quiet "${DATA[@]}" "${THREADS[@]}")

left() { echo $((DEADLINE - $(date +%s))); }
log() { echo "[$(($(date +%s) - START))s] $*" | tee -a "$OUT/logs/main.log"; }

# Device description (the GPU's name from nvidia-smi and from torch), written first.
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true; } \
  > "$OUT/logs/nvidia-smi.txt"
"$PY" - "$OUT" "$TINY" <<'EOF'
import json, os, platform, sys
import torch
cuda = torch.cuda.is_available()
smi = open(os.path.join(sys.argv[1], "logs", "nvidia-smi.txt")).read().strip()
rec = {"cuda": cuda, "gpu": torch.cuda.get_device_name(0) if cuda else None,
       "gpu_count": torch.cuda.device_count() if cuda else 0, "nvidia_smi": smi or None,
       "torch": torch.__version__, "torch_cuda": torch.version.cuda, "cpu_count": os.cpu_count(),
       "machine": platform.machine(), "load_avg": os.getloadavg()}
json.dump(rec, open(os.path.join(sys.argv[1], "device.json"), "w"), indent=1)
print("device:", rec["gpu"] or "no GPU (CPU)", "| torch", rec["torch"])
if not cuda and sys.argv[2] != "1":
    sys.exit(f"no CUDA device visible to torch {torch.__version__} (CUDA build: {torch.version.cuda}); "
             f"the full run needs a GPU and a CUDA build of torch (--tiny checks the pipeline on a CPU)")
EOF

# Decode the dataset once before the concurrent jobs (they would wait on the same lock).
"$PY" -c "import onebit.data as d; d.load('cifar10', 'train'); d.load('cifar10', 'test')"
log "data ready, $(left) s left"

# train NAME SECONDS ARGS...: one training under its budget (epochs fitted to SECONDS) and a
# hard time limit; the checkpoint of the last finished epoch survives a kill.
train() {
  local name=$1 secs=$2; shift 2
  log "$name: training for at most ${secs} s"
  timeout -k 10 $((secs + 15)) "${ONEBIT[@]}" train "$@" "${TRAIN_OPTS[@]}" --budget-s "$secs" \
    --out "$OUT/$name.pt" --json "$OUT/$name.train.json" > "$OUT/logs/$name.train.log" 2>&1 \
    || log "$name: training ended with status $? (see logs/$name.train.log)"
}

# ship NAME: export the checkpoint and measure the engine's accuracy on the test split.
ship() {
  local name=$1
  [ -f "$OUT/$name.pt" ] || { log "$name: no checkpoint"; return 0; }
  "${ONEBIT[@]}" export "$OUT/$name.pt" -o "$OUT/$name.onebit" --dataset cifar10 \
    --json "$OUT/$name.export.json" > "$OUT/logs/$name.export.log" 2>&1 \
    && "${ONEBIT[@]}" eval "$OUT/$name.onebit" --dataset cifar10 --quiet "${EVAL_LIMIT[@]}" \
      "${ENGINE_THREADS[@]}" --json "$OUT/$name.eval.json" > "$OUT/logs/$name.eval.log" 2>&1 \
    && log "$name: $(cat "$OUT/logs/$name.eval.log")" \
    || log "$name: export or engine eval failed (see logs/$name.export.log, logs/$name.eval.log)"
}

job_a() {
  # baseline: BASE_SHARE % of the time before the reserve; then pruning (at most what leaves
  # FT_MIN seconds) and the fine-tune of the pruned network for the rest
  train cifar-binarynet $(( ($(left) - RESERVE) * BASE_SHARE / 100 )) cifar-binarynet --width "$WIDTH_A" --lr "$LR" \
    --epochs "$MAX_EPOCHS"
  ship cifar-binarynet &
  local ship_pid=$!
  if [ -f "$OUT/cifar-binarynet.pt" ]; then
    log "cifar-binarynet-pruned: latent channel pruning (multiples of $MULTIPLE, sensitivity)"
    if timeout -k 10 $(( $(left) - RESERVE - FT_MIN )) "${ONEBIT[@]}" prune "$OUT/cifar-binarynet.pt" \
        --method latent --granularity channel --channel-multiple "$MULTIPLE" --sensitivity \
        --target-bops 0.4 --finetune-epochs 0 "${PRUNE_DATA[@]}" "${THREADS[@]}" --quiet \
        -o "$OUT/cifar-binarynet-pruned0.pt" --json "$OUT/prune.json" --plot "$OUT/prune-plots" \
        > "$OUT/logs/prune.log" 2>&1; then
      train cifar-binarynet-pruned $(( $(left) - RESERVE )) cifar-binarynet \
        --init "$OUT/cifar-binarynet-pruned0.pt" --lr "$FT_LR" --epochs "$MAX_EPOCHS" --warmup 0
      ship cifar-binarynet-pruned
    else
      log "cifar-binarynet-pruned: pruning failed or ran out of time (see logs/prune.log)"
    fi
  fi
  wait "$ship_pid"
}

job_bireal() {
  local name=$1; shift
  train "$name" $(( $(left) - RESERVE )) birealnet18 --stem cifar --width "$WIDTH_B" --lr "$LR" \
    --epochs "$MAX_EPOCHS" "$@"
  ship "$name"
}

job_a & PA=$!
job_bireal birealnet18-float & PB=$!
job_bireal birealnet18-clip --clip-block & PC=$!
wait $PA $PB $PC || true

"$PY" - "$OUT" <<'EOF'
import json, os, sys
out = sys.argv[1]
def read(name):
    p = os.path.join(out, name)
    return json.load(open(p)) if os.path.exists(p) else None
device = read("device.json") or {}
rows = []
for name in ("cifar-binarynet", "cifar-binarynet-pruned", "birealnet18-float", "birealnet18-clip"):
    tr, ev, ex = read(f"{name}.train.json"), read(f"{name}.eval.json"), read(f"{name}.export.json")
    row = {"name": name, "gpu": device.get("gpu"), "trained": tr is not None}
    if tr:
        row.update(model=tr["config"]["model"], width=tr["config"]["width"],
                   clip_block=tr["config"]["clip_block"], epochs=len(tr["epochs"]),
                   train_seconds=tr["train_seconds"], wall_seconds=tr["wall_seconds"],
                   pytorch_accuracy=tr["test_accuracy"], device=tr["environment"]["device"],
                   per_epoch_accuracy=[e.get("test_accuracy") for e in tr["epochs"]])
    if ev:
        row.update(engine_accuracy=ev["accuracy"], engine_images=ev["n"], engine_isa=ev["isa"])
        if tr:
            row["engine_minus_pytorch_pt"] = 100 * (ev["accuracy"] - tr["test_accuracy"])
    if ex:
        row["onebit_bytes"] = ex["bytes"]
    rows.append(row)
prune = read("prune.json")
if prune:
    rows[1]["bops"] = {"baseline": prune["baseline"]["bops"], "pruned": prune["pruned"]["bops"],
                       "reduction": prune["pruned"]["reduction"],
                       "accuracy_before_finetune": prune["pruned"]["test_accuracy"]}
json.dump({"device": device, "runs": rows}, open(os.path.join(out, "summary.json"), "w"), indent=1)
for r in rows:
    acc = lambda k: f"{100 * r[k]:.2f}%" if r.get(k) is not None else "-"
    print(f"{r['name']:24s} epochs {r.get('epochs', '-')!s:>4s}  pytorch {acc('pytorch_accuracy'):>7s}  "
          f"engine {acc('engine_accuracy'):>7s}")
EOF
log "done in $(($(date +%s) - START)) s (budget $BUDGET s): $OUT/summary.json"
