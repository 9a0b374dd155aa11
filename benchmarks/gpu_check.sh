#!/usr/bin/env bash
# The GPU check of a CUDA machine, in one go (about 8 minutes on one GPU once the demos are cached):
#   bash benchmarks/gpu_check.sh [OUT_DIR]
# 1. set-up with onnxruntime-gpu (make setup GPU=1) and what the machine has (nvidia-smi, providers)
# 2. the CUDA tests (pytest -m cuda): they skip with their reason where CUDA is missing
# 3. qonnx compare of both demos on cpu,cuda: device memory per row (GPU MiB, NVML) and the nodes
#    ONNX Runtime placed on the CPU under CUDA (report.md "Node placement under CUDA")
# Everything it prints also lands in OUT_DIR (default gpu-check-DATE), with both run folders.
# A machine without a registry: SKIP_SETUP=1 PY=python3 (an environment that already holds qonnx's
# packages and onnxruntime-gpu); other models: CLS_MODEL / LM_MODEL with extra compare options in CLS_ARGS / LM_ARGS (--dataset ...).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-gpu-check-$(date +%Y%m%d-%H%M)}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
TORCH=${TORCH:-"torch --index-url https://download.pytorch.org/whl/cu124"}

echo "== set-up ($(date -u +%FT%TZ))"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || echo "nvidia-smi: none"
if [ -z "${SKIP_SETUP:-}" ]; then
  make setup GPU=1 TORCH="$TORCH" || { echo "set-up failed"; exit 1; }
fi
PY=${PY:-.venv/bin/python}
"$PY" - <<'EOF'
import onnxruntime as ort, torch
print("onnxruntime", ort.__version__, ort.get_available_providers())
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
EOF

echo "== CUDA tests"
timeout "${T_TESTS:-300}" "$PY" -m pytest -q -p no:cacheprovider -m cuda -rs tests || echo "CUDA tests: FAILED"

for demo in sentiment smollm2; do
  args=(--providers cpu,cuda -o "$OUT/$demo")
  if [ "$demo" = sentiment ]; then
    model=${CLS_MODEL:-demo:sentiment}; extra=${CLS_ARGS:-}
    args+=(--max-samples 300 --variants torch-fp32,torch-fp16,onnx-fp32,onnx-fp16,onnx-int8-dynamic,onnx-int8-static)
  else
    model=${LM_MODEL:-demo:smollm2}; extra=${LM_ARGS:-}
    args+=(--eval-tokens 1024 --variants torch-fp32,torch-fp16,onnx-fp32,onnx-fp16,onnx-int8-dynamic,onnx-int4-rtn)
  fi
  read -r -a more <<< "$extra"; args+=("${more[@]}")
  echo "== compare $model on cpu,cuda"
  timeout "${T_CMP:-420}" "$PY" -m qonnx compare "$model" "${args[@]}"
  echo "exit code $?"
  "$PY" - "$OUT/$demo/results.json" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
for r in doc["rows"]:
    place = r.get("placement") or {}
    print(f'{r["variant"]:22s} {r["provider"]:5s} {r["status"]:8s} GPU MiB {r.get("device_memory_mb")}  '
          f'host model MiB {r.get("model_memory_mb")}  CPU nodes {place.get("cpu_nodes")} {place.get("cpu_op_types") or ""}'
          f'  {r.get("reason", "")[:80]}')
EOF
done
echo "== done: $OUT"
