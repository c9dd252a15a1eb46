#!/usr/bin/env bash
# Issue 4 on the GPU: SmolLM2-135M (embedded model) fine-tuned with the Run 2 preset on all 7000 Spider train
# examples by DDP over two GPUs (per-device batch 8 x 2 GPUs = Table 1's 16), then `sqlshift predict --score`
# on the 972 evaluable dev examples for the base model and the adapter, and MMLU (letter, all 57) of the adapter.
set -uo pipefail
S=/root/models/smollm2 R=/root/runs/smol
mkdir -p $R
ARGS="train --config configs/train/seed-run2.yaml --model $S --output $R/train load_in_4bit=false optimizer=adamw_torch save_steps=1000"
t0=$(date +%s)
accelerate launch --multi_gpu --num_processes 2 -m sqlshift.cli $ARGS per_device_batch_size=8 \
  || { echo "DDP FAILED: single GPU instead"; rm -rf $R/train; CUDA_VISIBLE_DEVICES=1 python3 -m sqlshift.cli $ARGS; }
echo "train wall: $(( $(date +%s) - t0 )) s"
export CUDA_VISIBLE_DEVICES=1
P="python3 -m sqlshift.cli predict --model $S --spider-dir /root/data/spider --split dev --batch-size 256 --max-new-tokens 160 --score"
t0=$(date +%s); $P --adapter $R/train --out $R/ft-dev; echo "ft predict wall: $(( $(date +%s) - t0 )) s"
t0=$(date +%s); $P --out $R/base-dev; echo "base predict wall: $(( $(date +%s) - t0 )) s"
python3 -m sqlshift.cli eval-mmlu --model $S --adapter $R/train --mmlu-dir /root/data/mmlu --subjects all \
  --mode letter --batch-size 64 --out $R/ft-mmlu-letter
echo SMOL DONE
