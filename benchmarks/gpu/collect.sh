#!/usr/bin/env bash
# Wait up to $1 seconds for the background studies, then pack the named run dirs (default qwen15 smollm2;
# no adapters/checkpoints) into $OUT.
set -uo pipefail
deadline=$(( $(date +%s) + ${1:-500} ))
shift || true
runs=${*:-qwen15 smollm2}
while pgrep -f "sqlshift.cli run" >/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 10; done
for r in $runs; do
  grep -E "INFO|Error|error" /root/runs/$r.log | grep -v -E "it/s\]|s/it\]" | tail -15
  tar -czf $OUT/$r.tar.gz -C /root/runs --exclude='checkpoint-*' --exclude='*.safetensors' --exclude='*.pt' --exclude='*.bin' $r $r.log 2>/dev/null
done
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv
pgrep -fa "sqlshift.cli run" | head -3 || true
ls -la $OUT
