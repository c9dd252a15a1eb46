#!/usr/bin/env bash
# Prepare a bare GPU machine of the `device` tool for a sqlshift study (idempotent: a warm machine skips work).
# Expects the carried parts in /root/m (see docs/results.md, "Reproducing"):
#   part00..part18  = Qwen2.5-Coder-1.5B-Instruct GGUF followed by the SmolLM2-135M-Instruct GGUF, split
#   whl/*.whl       = trl, datasets, gguf, sqlglot, pydantic (+ deps) for Python 3.12
#   data.tar.xz     = Spider json + databases, MMLU, Spider-Syn/-Realistic/-DK
set -euo pipefail
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export HF_HUB_OFFLINE=1 DEEPEVAL_TELEMETRY_OPT_OUT=YES PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
M=/root/m
QWEN15_BYTES=1117320768
if [ ! -d /tmp/site/trl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $M/whl/*.whl
fi
export PYTHONPATH=/tmp/site:$PWD/src
[ -d /root/data/spider ] || { mkdir -p /root/data && tar -xJf $M/data.tar.xz -C /root/data; }
if [ ! -f /root/models/qwen15.gguf ]; then
  mkdir -p /root/models
  cat $M/part?? > /root/models/blob
  head -c $QWEN15_BYTES /root/models/blob > /root/models/qwen15.gguf
  tail -c +$((QWEN15_BYTES + 1)) /root/models/blob > /root/models/smollm2.gguf
  rm /root/models/blob
  sha256sum /root/models/qwen15.gguf /root/models/smollm2.gguf
fi
# De-quantize once into safetensors folders: later loads take a second instead of 15-40 s.
for name in qwen15 smollm2; do
  [ -f /root/models/$name/config.json ] || python3 -m sqlshift.cli export-model /root/models/$name.gguf /root/models/$name --dtype bf16
done
export SQLSHIFT_DATA_DIR=/root/data
