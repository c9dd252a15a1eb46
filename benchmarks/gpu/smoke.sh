#!/usr/bin/env bash
# The GPU smoke check, for every change to model, backend, runner or training code: `sqlshift run` on
# configs/gpu-smoke.yaml (SmolLM2-135M-Instruct, 64 Spider dev questions, 500 MMLU questions, a slice of the
# generality suite, a 30-step LoRA run and its λ = 0.5 point, a 30-step full fine-tune) through vLLM, then the same study with lm.backend: hf; exit codes, wall times and each step's
# log go to /root/res/smoke.log (prepare.sh says why not $OUT). With SQLSHIFT_IMPORT_LOG set, every Python process
# records the top-level modules it imports (benchmarks/gpu/importspy), which benchmarks/gpu/vllm_wheels_used.py turns into the vLLM wheel list.
# Here first:  SQLSHIFT_DATA_DIR=../shared/data bash benchmarks/gpu/pack.sh   (then carry .carry/parts/NN one per call)
# There:       mkdir -p /root/res && (setsid nohup bash benchmarks/gpu/smoke.sh > /root/res/smoke.out 2>&1 < /dev/null &); then poll
#              grep -q '== smoke done' /root/res/smoke.log, and fetch with cp /root/res/* $OUT/
# BACKENDS="hf" runs one half (default "vllm hf"): the hf half fits beside a study that holds the GPU's engine.
set -uo pipefail
source benchmarks/gpu/prepare.sh
set +e
cd $SNAP
LOG=$OUT/smoke.log
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader | tee $LOG
python3 -c "import torch, transformers, vllm; print('torch', torch.__version__, 'transformers', transformers.__version__, 'vllm', vllm.__version__)" 2>&1 | tail -1 | tee -a $LOG
python3 - configs/gpu-smoke.yaml /root/runs/gpu-smoke-hf.yaml <<'PY'
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
cfg["name"], cfg["lm"] = cfg["name"] + "-hf", {"backend": "hf"}  # vLLM-only keys are errors for hf
yaml.safe_dump(cfg, open(sys.argv[2], "w"), sort_keys=False)
PY
run() {  # config, run dir, extra env
  local t0=$(date +%s)
  env "${@:3}" python3 -m sqlshift run "$1" --model embedded -o "$2" > "$2.log" 2>&1
  local rc=$?
  grep -v -E "it/s\]|s/it\]|^\s*$" "$2.log" | tail -40 >> $LOG
  echo "== rc=$rc wall=$(( $(date +%s) - t0 )) s  sqlshift run $1" | tee -a $LOG
}
[[ " ${BACKENDS:-vllm hf} " == *" vllm "* ]] && run configs/gpu-smoke.yaml /root/runs/gpu-smoke-vllm PYTHONPATH=$SNAP/benchmarks/gpu/importspy:$PYTHONPATH \
  SQLSHIFT_IMPORT_LOG=${SQLSHIFT_IMPORT_LOG:-}
[[ " ${BACKENDS:-vllm hf} " == *" hf "* ]] && run /root/runs/gpu-smoke-hf.yaml /root/runs/gpu-smoke-hf
# the same verdicts? (a 135M model; bf16 kernels may flip a few)
python3 - <<'PY' | tee -a $LOG
import json, pathlib
for point in ("baseline", "lora", "lora-lambda0.5", "full"):
    for bench in ("spider-dev", "mmlu", "hellaswag", "arc_challenge", "winogrande", "gsm8k_chat", "ifeval"):
        rows = {}
        for b in ("vllm", "hf"):
            f = pathlib.Path(f"/root/runs/gpu-smoke-{b}/models/{point}/{bench}/results.jsonl")
            rows[b] = {r["id"]: r["correct"] for r in map(json.loads, f.read_text().splitlines())} if f.is_file() else {}
        same = sum(rows["vllm"].get(k) == v for k, v in rows["hf"].items())
        print(f"{point:16s} {bench:10s} vllm {sum(rows['vllm'].values())}/{len(rows['vllm'])}  "
              f"hf {sum(rows['hf'].values())}/{len(rows['hf'])}  same verdict {same}/{len(rows['hf'])}")
PY
cp /root/runs/gpu-smoke-vllm/summary.json $OUT/smoke-vllm.summary.json 2>/dev/null
cp /root/runs/gpu-smoke-vllm/run.log $OUT/smoke-vllm.run.log 2>/dev/null
echo "== smoke done" | tee -a $LOG
