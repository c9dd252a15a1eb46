#!/usr/bin/env bash
# Wait up to $1 seconds for the background sqlshift processes, then pack the named run dirs under /root/runs
# (no checkpoints, no tokenizer copies; final adapters only when under 8 MB: a bigger tarball does not come back) and all logs into
# $OUT. Usage: collect.sh WAIT_S RUN_DIR...
set -uo pipefail
deadline=$(( $(date +%s) + ${1:-500} ))
shift || true
while pgrep -f "[s]qlshift.cli" >/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 10; done
cd /root/runs
for r in "$@"; do
  find $r -name '*.safetensors' -size +8M > /tmp/big.txt
  tar -czf $OUT/$r.tar.gz --exclude='checkpoint-*' --exclude=tokenizer.json --exclude='*.pt' --exclude='*.bin' -X /tmp/big.txt $r
done
tar -czf $OUT/logs.tar.gz *.log *.jsonl 2>/dev/null
for f in *.log; do echo "== $f"; grep -v -E "it/s\]|s/it\]|Warning|warn" $f | grep -E "INFO|EX|MMLU|wall|Error|error|FAILED|DONE|execution_accuracy" | tail -8; done
nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv
pgrep -fa "[s]qlshift.cli" | cut -c1-160 || true
ls -la $OUT
