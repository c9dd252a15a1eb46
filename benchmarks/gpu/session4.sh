#!/usr/bin/env bash
# Session 4 (two H100s): the mitigation study of issue 8, with the seed's Run 2 (lr 5e-5) as the learning-rate lever.
# Planned from session 3's timings (≈ 390 s per 1.5B training incl. loading, ≈ 60-80 s per evaluation point),
# longest-first so that what is cut by the device budget is the least needed:
#   GPU 0: baseline -> run2 (lr 5e-5) -> r64-mlp
#   GPU 1: run1 (+ λ 0.25/0.5/0.75) -> run1-replay20 -> r4
# Then poll with `bash benchmarks/gpu/collect.sh 570 mitigation` in back-to-back calls.
set -uo pipefail
source benchmarks/gpu/setup.sh
mkdir -p /root/runs
Q=/root/models/qwen15
run() { echo python3 -m sqlshift.cli run configs/mitigation.yaml --model $Q -o /root/runs/mitigation --only "$1"; }
CUDA_VISIBLE_DEVICES=1 setsid nohup $(run run1,run1-replay20,r4) > /root/runs/gpu1.log 2>&1 < /dev/null &
sleep 10
CUDA_VISIBLE_DEVICES=0 setsid nohup $(run baseline,run2,r64-mlp) > /root/runs/gpu0.log 2>&1 < /dev/null &
sleep 5; nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv
