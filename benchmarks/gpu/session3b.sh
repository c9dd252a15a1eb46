#!/usr/bin/env bash
# Session 3, second machine (the first was lost while idle): GPU 0 = run1 with eager attention (run1 and r4 with
# SDPA had NaN gradients, logged at step 70, on the first machine); GPU 1 = baseline, run2, and SmolLM2 Run 2 (issue 4).
set -uo pipefail
source benchmarks/gpu/setup.sh
mkdir -p /root/runs
C=benchmarks/gpu/configs/qwen15-s3.yaml Q=/root/models/qwen15
st() { echo python3 -m sqlshift.cli run $C --model $Q -o /root/runs/qwen15-s3 --only "$1"; }
CUDA_VISIBLE_DEVICES=0 setsid nohup $(st run1-eager) > /root/runs/p-eager.log 2>&1 < /dev/null &
sleep 15
CUDA_VISIBLE_DEVICES=1 setsid nohup bash -c "$(st baseline); $(st run2)" > /root/runs/p-run2.log 2>&1 < /dev/null &
setsid nohup bash benchmarks/gpu/smol_ddp.sh > /root/runs/smol.log 2>&1 < /dev/null &
sleep 5; nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv
