#!/usr/bin/env bash
# The seed protocol on one GPU in ONE `sqlshift run` ($CONFIG, default configs/seed-protocol.yaml:
# Qwen2.5-Coder-1.5B-Instruct, baseline + Run 1 + Run 2, Spider dev + MMLU 57), with the GPU's memory and busy share
# every 5 s; with WITH_HF=1 then Run 1's adapter through the other backend (lm.backend: hf, as an `adapter:` run) for
# the backend-agreement table; RUN_OVERRIDES (YAML) adds training overrides to every run. Needs the s*, v* and q*
# parts (pack.sh with WITH_QWEN=1). Long: start it in the background and poll, e.g.
#   mkdir -p /root/res && (setsid nohup bash benchmarks/gpu/seed_protocol.sh > /root/res/protocol.log 2>&1 < /dev/null &)
# Poll: grep -q '== done' /root/res/protocol.log. Results: /root/res/protocol.tar.gz (fetch: cp /root/res/* $OUT/).
set -uo pipefail
source benchmarks/gpu/prepare.sh
set +e
cd $SNAP
Q=/root/models/qwen15
CONFIG=${CONFIG:-configs/seed-protocol.yaml}
if [ -n "${RUN_OVERRIDES:-}" ]; then  # e.g. RUN_OVERRIDES='{per_device_batch_size: 16, gradient_accumulation_steps: 1}'
  python3 - $CONFIG /root/runs/seed-protocol-variant.yaml "$RUN_OVERRIDES" <<'PYEND'
import sys, yaml
from sqlshift.study.config import find_experiment
cfg = yaml.safe_load(open(find_experiment(sys.argv[1])))
for run in cfg["runs"]:
    run["overrides"] = {**run.get("overrides", {}), **yaml.safe_load(sys.argv[3])}
yaml.safe_dump(cfg, open(sys.argv[2], "w"), sort_keys=False)
PYEND
  CONFIG=/root/runs/seed-protocol-variant.yaml
fi
[ -f $Q/config.json ] || python3 -m sqlshift export-model /root/models/qwen15.gguf -o $Q --dtype bf16 > /root/runs/export.log 2>&1
nvidia-smi --query-gpu=name,memory.used,memory.total,driver_version --format=csv,noheader
( while sleep 5; do nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader,nounits \
    | sed "s/^/$(date +%s) /"; done ) > /root/runs/gpu-trace.txt 2>&1 &
TRACE=$!
t0=$(date +%s)
python3 -m sqlshift run $CONFIG --model $Q -o /root/runs/seed-protocol > /root/runs/protocol.out 2>&1
echo "== rc=$? wall=$(( $(date +%s) - t0 )) s  sqlshift run $CONFIG"
kill $TRACE
if [ "${WITH_HF:-0}" = 1 ]; then
  python3 - $CONFIG /root/runs/seed-protocol-hf.yaml <<'PYEND'
import sys, yaml
from sqlshift.study.config import find_experiment
cfg = yaml.safe_load(open(find_experiment(sys.argv[1])))
cfg["name"], cfg["lm"] = cfg["name"] + "-hf", {"backend": "hf"}
cfg["runs"] = [{"name": "run1", "adapter": "/root/runs/seed-protocol/train/run1"}]
cfg.pop("executor", None), cfg.pop("overlap", None)
yaml.safe_dump(cfg, open(sys.argv[2], "w"), sort_keys=False)
PYEND
  t0=$(date +%s)
  python3 -m sqlshift run /root/runs/seed-protocol-hf.yaml --model $Q -o /root/runs/seed-protocol-hf > /root/runs/protocol-hf.out 2>&1
  echo "== rc=$? wall=$(( $(date +%s) - t0 )) s  sqlshift run seed-protocol-hf.yaml"
fi
cd /root/runs && tar -czf $OUT/protocol.tar.gz --exclude='*.safetensors' --exclude='*.pt' --exclude='*.bin' \
  --exclude='checkpoint-*' --ignore-failed-read seed-protocol seed-protocol-hf protocol.out protocol-hf.out gpu-trace.txt
echo "== done"
