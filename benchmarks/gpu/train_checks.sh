#!/usr/bin/env bash
# Short `sqlshift train` runs on the GPU (Qwen2.5-Coder-1.5B-Instruct, seed Run 1's rows) for training options that
# a later study relies on and no GPU has run through the CLI yet: QLoRA as the seed preset trains it (4-bit NF4 base,
# paged 8-bit AdamW, 8 x 2; needs the bitsandbytes wheel from pack.sh) and compile_layers (bf16 base, 16 x 1).
# Each line of /root/res/train-checks.log: exit code, wall time, and the trainer's "training took" line (tokens/s).
# CHECKS=qlora,compile picks them; STEPS (default 60) the optimizer steps of each.
set -uo pipefail
source benchmarks/gpu/prepare.sh
set +e
cd $SNAP
bf16_model qwen15
LOG=$OUT/train-checks.log
STEPS=${STEPS:-60}
check() {  # name, overrides...
  local t0=$(date +%s)
  python3 -m sqlshift train seed-run1 "${@:2}" max_steps=$STEPS save_steps=100000 --model /root/models/qwen15 \
    -o /root/runs/check-$1 > /root/runs/check-$1.log 2>&1
  echo "== $1 rc=$? wall=$(( $(date +%s) - t0 )) s  $(grep -h "training took" /root/runs/check-$1/train.log | tail -1 | cut -d" " -f5-)" \
    | tee -a $LOG
  grep -h -E "Error|error:" /root/runs/check-$1.log | tail -3 >> $LOG
  cp /root/runs/check-$1.log $OUT/train-check-$1.log
}
[[ ",${CHECKS:-qlora,compile}," == *,qlora,* ]] && check qlora per_device_batch_size=8 gradient_accumulation_steps=2
[[ ",${CHECKS:-qlora,compile}," == *,compile,* ]] && check compile load_in_4bit=false optimizer=adamw_torch \
  per_device_batch_size=16 gradient_accumulation_steps=1 compile_layers=true
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader >> $LOG
echo "== train checks done" | tee -a $LOG
