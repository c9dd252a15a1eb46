#!/usr/bin/env bash
# What the GPU study still lacks (docs/results.md, "Not run"), planned from session 3's measurements on a two-H100
# machine: one 1.5B training per GPU at a time (two OOM at batch 8 x 1024 with the 151k vocabulary), ≈ 5.2 min per
# training, ≈ 1 min per evaluation point (dev EX + MMLU 57). Carry the parts as setup.sh says, then run this and
# keep polling with `bash benchmarks/gpu/collect.sh 540 qwen15-study mitigation` (a machine idle for 30 s is lost).
#   GPU 0: Run 2 (eager) with Syn/Realistic/DK, then r=4          -> learning-rate question, capacity (low end)
#   GPU 1: Run 1 with λ 0.25/0.5/0.75, then replay 20%, then r=64+MLP -> WiSE-FT curve, replay, capacity (high end)
set -uo pipefail
source benchmarks/gpu/setup.sh
mkdir -p /root/runs
Q=/root/models/qwen15
run() { echo python3 -m sqlshift.cli run "$1" --model $Q -o "/root/runs/$2" --only "$3"; }
CUDA_VISIBLE_DEVICES=0 setsid nohup bash -c "$(run configs/qwen15-study.yaml qwen15-study baseline,run2); \
  $(run configs/mitigation.yaml mitigation baseline,r4)" > /root/runs/gpu0.log 2>&1 < /dev/null &
CUDA_VISIBLE_DEVICES=1 setsid nohup bash -c "$(run configs/mitigation.yaml mitigation run1); \
  $(run configs/mitigation.yaml mitigation run1-replay20); $(run configs/mitigation.yaml mitigation r64-mlp)" \
  > /root/runs/gpu1.log 2>&1 < /dev/null &
sleep 5; nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv
