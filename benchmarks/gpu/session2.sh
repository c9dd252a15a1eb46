#!/usr/bin/env bash
# Session 2 of the GPU study: Run 2 (+ baseline again), Run 1 with fp32 master weights, and SmolLM2 Run 2, in
# parallel on one H100 (each its own process and run directory); collect with collect.sh s2-run2 s2-run1 s2-smol.
set -uo pipefail
source benchmarks/gpu/setup.sh
mkdir -p /root/runs
C=benchmarks/gpu/configs
launch() { setsid nohup python3 -m sqlshift.cli run "$1" --model "$2" -o "/root/runs/$3" > "/root/runs/$3.log" 2>&1 < /dev/null & }
launch $C/qwen15-run2.yaml /root/models/qwen15 s2-run2
launch $C/smollm2-run2.yaml /root/models/smollm2 s2-smol
sleep 20; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv; tail -3 /root/runs/*.log
