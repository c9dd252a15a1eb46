#!/usr/bin/env bash
# Issue 15 on the two-H100 machine: standard vs fast training path in one process (GPU 0), the full Run 1 epoch on
# the fast path (GPU 1, at the same time), then Run 1 by DDP over both GPUs. Carry first (see docs/results.md,
# "Fast training path"): /root/m/m.part00.. (the Qwen2.5-Coder-1.5B-Instruct GGUF split in order), .carry/whl_gpu
# (trl 1.16.0, datasets 5.0.1, dill, multiprocess, gguf, sqlglot, pydantic + pydantic-core, annotated-types,
# typing-inspection, peft 0.21.2, accelerate 1.15.0, liger-kernel 0.8.5), .carry/data (train_spider.json,
# tables.json), .carry/snap (src/ + benchmarks/ of the commit to run: the lead's files may be mid-edit).
#   bash benchmarks/gpu/fastpath.sh setup     # join + check the GGUF, install wheels, export a bf16 folder
#   bash benchmarks/gpu/fastpath.sh bench     # bench_train.py on GPU 0 || Run 1 fast path on GPU 1
#   bash benchmarks/gpu/fastpath.sh ddp       # Run 1 fast path, accelerate launch --multi_gpu over 2 GPUs
set -uo pipefail
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
SNAP=${SNAP:-$PWD/.carry/snap}
export PYTHONPATH=/tmp/site:$SNAP/src
export SQLSHIFT_DATA_DIR=/root/data
Q=/root/models/qwen15
OUT=${OUT:-/root/out}
RUN1="load_in_4bit=false optimizer=adamw_torch save_steps=100000"   # configs/mitigation.yaml's Run 1, no checkpoints
case "$1" in
setup)
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .carry/whl_gpu/*.whl 2>&1 | tail -2
  mkdir -p /root/data/spider && cp .carry/data/*.json /root/data/spider/
  if [ ! -f /root/qwen15.gguf ]; then cat /root/m/m.part* > /root/qwen15.gguf && rm -f /root/m/m.part*; fi
  sha256sum /root/qwen15.gguf
  python3 -c "import torch, transformers, trl, peft, accelerate, liger_kernel; print(torch.__version__, transformers.__version__, trl.__version__, peft.__version__, accelerate.__version__, torch.cuda.device_count())"
  [ -f $Q/config.json ] || python3 - <<'PY'
from sqlshift.models import load_model
m, t = load_model("/root/qwen15.gguf", dtype="bf16", device="cpu")
m.save_pretrained("/root/models/qwen15"); t.save_pretrained("/root/models/qwen15")
PY
  ls $Q ;;
bench)
  mkdir -p /root/runs
  CUDA_VISIBLE_DEVICES=1 setsid nohup python3 $SNAP/benchmarks/gpu/train_entry.py seed-run1 $Q /root/runs/run1-fast \
    $RUN1 per_device_batch_size=8 gradient_accumulation_steps=2 > /root/runs/run1-fast.log 2>&1 < /dev/null &
  CUDA_VISIBLE_DEVICES=0 python3 $SNAP/benchmarks/bench_train.py --model $Q --steps ${STEPS:-40} --json $OUT/bench.json 2>&1 \
    | grep -v "it/s\]\|s/it\]" | tee $OUT/bench.log
  while pgrep -f run1-fast > /dev/null; do sleep 5; done
  grep -v "it/s\]\|s/it\]" /root/runs/run1-fast.log | tail -25 > $OUT/run1-fast.log
  cp /root/runs/run1-fast/log_history.json $OUT/run1-fast.log_history.json
  (cd /root/runs/run1-fast && tar czf $OUT/run1-fast-adapter.tgz adapter_model.safetensors adapter_config.json \
    train_config.yaml train_data.json log_history.json tokenizer.json tokenizer_config.json chat_template.jinja 2>/dev/null)
  ls -la $OUT ;;
ddp)
  accelerate launch --multi_gpu --num_processes 2 --mixed_precision no $SNAP/benchmarks/gpu/train_entry.py seed-run1 $Q \
    /root/runs/run1-ddp $RUN1 per_device_batch_size=8 gradient_accumulation_steps=1 2>&1 \
    | grep -v "it/s\]\|s/it\]" | tail -30 | tee $OUT/run1-ddp.log
  cp /root/runs/run1-ddp/log_history.json $OUT/run1-ddp.log_history.json
  python3 -c "import json; print(json.load(open('/root/runs/run1-ddp/train_data.json'))['speed'])" ;;
esac
