#!/usr/bin/env bash
# Session 5 (two H100s/H200s): issue 16's generality study on the new LM/Benchmark code path.
#   GPU 0: baseline + Run 1 (the adapter trained on the fast path earlier in the session, carried back in)
#   GPU 1: r64-mlp (trained here on the fast path), then evaluated
# every model on Spider dev, MMLU 57, HellaSwag (4000), ARC-Challenge, WinoGrande, GSM8K chat (400), IFEval (300).
# Carried (git-ignored .carry/): c00..c17 = the Qwen2.5-Coder-1.5B-Instruct GGUF in 18 parts (one call each,
# back to back: the machine is given back after 30 s idle), whl_gpu (trl, datasets, gguf, sqlglot, liger, ...),
# whl_lmeval (lm-eval + IFEval's checkers), s5/data.tar.xz (Spider dev dbs + train json, MMLU, general files),
# run1-fast (the adapter).
#   bash benchmarks/gpu/session5.sh part     # with carry [.carry/cNN]: stash one part
#   bash benchmarks/gpu/session5.sh setup    # join + check, install, unpack, export bf16, launch both GPUs
#   bash benchmarks/gpu/session5.sh wait S   # wait up to S seconds, then pack results into $OUT
set -uo pipefail
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false DEEPEVAL_TELEMETRY_OPT_OUT=YES
export PYTHONPATH=/tmp/site:/root/snap/src SQLSHIFT_DATA_DIR=/root/data
Q=/root/models/qwen15
R=/root/runs
case "$1" in
part)
  mkdir -p /root/m && cp .carry/c*/m.part* /root/m/ && ls /root/m | wc -l ;;
setup)
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .carry/whl_gpu/*.whl \
    .carry/whl_lmeval/*.whl 2>&1 | tail -2
  mkdir -p /root/data /root/adapters /root/snap $R && tar -xJf .carry/s5/data.tar.xz -C /root/data
  cp -r .carry/run1-fast /root/adapters/ && cp -r src configs benchmarks /root/snap/
  [ -f /root/qwen15.gguf ] || { cat /root/m/m.part* > /root/qwen15.gguf && rm -f /root/m/m.part*; }
  sha256sum /root/qwen15.gguf | cut -c1-16
  [ -f $Q/config.json ] || python3 -m sqlshift.cli export-model /root/qwen15.gguf $Q --dtype bf16 2>&1 | tail -1
  nvidia-smi --query-gpu=index,name,memory.used --format=csv
  go() { CUDA_VISIBLE_DEVICES=$1 setsid nohup python3 -m sqlshift.cli run /root/snap/benchmarks/gpu/configs/general-s5.yaml \
           --model $Q -o $R/general --only $2 > $R/gpu$1.log 2>&1 < /dev/null & }
  go 1 r64-mlp; sleep 20; go 0 baseline,run1; sleep 30
  grep -h -E "INFO|ERROR|error" $R/gpu*.log | tail -8 ;;
wait)
  deadline=$(( $(date +%s) + ${2:-500} ))
  while pgrep -f "[s]qlshift.cli run" >/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 10; done
  cd $R && find general -name '*.safetensors' -size +8M > /tmp/big.txt
  tar -czf $OUT/general.tar.gz --exclude='checkpoint-*' --exclude=tokenizer.json --exclude=predictions.jsonl -X /tmp/big.txt general
  tar -czf $OUT/preds.tar.gz $(find general -name predictions.jsonl) 2>/dev/null
  cp gpu*.log $OUT/ 2>/dev/null
  for f in gpu*.log; do echo "== $f"; grep -v -E "it/s\]|s/it\]" $f | grep -E "INFO|ERROR|Error|guard" | tail -12; done
  nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv
  pgrep -fa "[s]qlshift.cli" | cut -c1-120 || true ;;
esac
