#!/usr/bin/env bash
# Session 4 (two H100s): the mitigation study of issue 8, with the seed's Run 2 (lr 5e-5) as the learning-rate lever.
# Planned from session 3's timings (≈ 300 s per 1.5B training at 8 x 2, ≈ 60-80 s per evaluation point), most
# needed first so that what the device budget cuts is the least needed (in session 4: r4, still training at the end):
#   GPU 0: baseline -> run1 (+ λ 0.25/0.5/0.75) -> r64-mlp
#   GPU 1: run1-replay20 -> run2 (lr 5e-5) -> r4
# (In session 4 the baseline came from a first launch that ran out of memory at 16 x 1024 tokens, and the relaunch
# without it reused the cached step.)
# Then poll with `bash benchmarks/gpu/collect.sh 540 mitigation` in back-to-back calls.
set -uo pipefail
source benchmarks/gpu/setup.sh
mkdir -p /root/runs
Q=/root/models/qwen15
run() { echo python3 -m sqlshift.cli run configs/mitigation.yaml --model $Q -o /root/runs/mitigation --only "$1"; }
CUDA_VISIBLE_DEVICES=1 setsid nohup $(run run1-replay20,run2,r4) > /root/runs/gpu1.log 2>&1 < /dev/null &
sleep 10
CUDA_VISIBLE_DEVICES=0 setsid nohup $(run baseline,run1,r64-mlp) > /root/runs/gpu0.log 2>&1 < /dev/null &
sleep 5; nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv
