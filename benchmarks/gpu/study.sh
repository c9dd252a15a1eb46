#!/usr/bin/env bash
# The GPU studies of docs/results.md, on the `device` tool's H100 (run after the parts are carried, see setup.sh).
# 1. smoke test of the exact code path on a shrunken config; 2. both studies in the background (setsid), so they
# outlive this call; poll with benchmarks/gpu/collect.sh.
set -uo pipefail
source benchmarks/gpu/setup.sh
mkdir -p /root/runs
python3 benchmarks/gpu/shrink.py configs/qwen15-study.yaml /root/runs/smoke.yaml
t0=$(date +%s)
timeout 240 python3 -m sqlshift.cli run /root/runs/smoke.yaml --model /root/models/qwen15 -o /root/runs/smoke 2>&1 \
  | grep -v -E "it/s\]|s/it\]" | tail -40 || { echo "SMOKE FAILED"; exit 1; }
echo "smoke: $(( $(date +%s) - t0 )) s"
[ -f /root/runs/smoke/summary.json ] || { echo "SMOKE FAILED (no summary)"; exit 1; }
setsid nohup python3 -m sqlshift.cli run configs/qwen15-study.yaml --model /root/models/qwen15 \
  -o /root/runs/qwen15 > /root/runs/qwen15.log 2>&1 < /dev/null &
setsid nohup python3 -m sqlshift.cli run configs/spider-embedded.yaml --model /root/models/smollm2 \
  -o /root/runs/smollm2 > /root/runs/smollm2.log 2>&1 < /dev/null &
sleep 5; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv
