#!/usr/bin/env bash
# Session 3 of the GPU study (docs/results.md), on nvidia-h100-x2 (two H100s). After the parts are carried:
#   GPU 0: run1 (+ checkpoints, λ) | run1-replay20 then r4          (one run directory, --only per process)
#   GPU 1: generation benchmark first (GPU otherwise idle), then baseline + run2 | r64-mlp
#   both : SmolLM2-135M Run 2 trained by DDP over the two GPUs (accelerate launch), then predict + eval-sql
# Everything runs in the background (setsid); collect with: bash benchmarks/gpu/collect.sh WAIT_S qwen15-s3 smol
set -uo pipefail
source benchmarks/gpu/setup.sh
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
mkdir -p /root/runs
C=benchmarks/gpu/configs/qwen15-s3.yaml
Q=/root/models/qwen15
bg() { local gpu=$1 log=$2; shift 2; CUDA_VISIBLE_DEVICES=$gpu setsid nohup "$@" > /root/runs/$log.log 2>&1 < /dev/null & }
study() { echo python3 -m sqlshift.cli run $C --model $Q -o /root/runs/qwen15-s3 --only "$1"; }
bg 0 p-run1 $(study run1)
sleep 20  # let the first process create the run directory and its data before the others read it
bg 0 p-replay bash -c "$(study run1-replay20) ; $(study r4)"
nvidia-smi --query-gpu=index,name,utilization.gpu,memory.used --format=csv
# Generation speed, 135M, on the still idle GPU 1: batch 64 (session 2's setting) vs 256 vs 256 + static cache.
CUDA_VISIBLE_DEVICES=1 timeout 150 python3 benchmarks/bench_generate.py --model /root/models/smollm2 \
  --spider-dir /root/data/spider --n 512 --settings 64,256,256s 2>&1 | grep '^{' | tee /root/runs/bench_generate.jsonl
bg 1 p-run2 bash -c "$(study baseline) ; $(study run2)"
bg 1 p-r64 $(study r64-mlp)
bg 0,1 smol bash benchmarks/gpu/smol_ddp.sh
sleep 30; nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv; tail -n 2 /root/runs/*.log
