#!/usr/bin/env bash
# Issue 23: a QLoRA adapter scored on the 4-bit NF4 base it trained on and on the bf16 base, both through the
# transformers backend (so the two differ only in the base's precision; the study serves it on bf16 through vLLM).
# Waits for the study's adapter (its train_data.json is written when training ends), so it can start beside
# benchmarks/gpu/study.sh and run while the study scores checkpoints. One `sqlshift eval` per base into
# /root/runs/$NAME-4bit and -bf16; results: $OUT/$NAME-bases.tar.gz, rewritten after each.
#   (ADAPTER=/root/runs/qwen15-qlora-seeds/train/run1-qlora setsid nohup bash benchmarks/gpu/qlora_bases.sh \
#     > /root/res/bases.log 2>&1 < /dev/null &)
set -uo pipefail
source benchmarks/gpu/prepare.sh
set +e
cd $SNAP
ADAPTER=${ADAPTER:-/root/runs/qwen15-qlora-seeds/train/run1-qlora}
MODEL=${MODEL:-/root/models/qwen15}
NAME=${NAME:-$(basename "$ADAPTER")}
BENCH=${BENCH:-spider-dev,mmlu}
until [ -f "$ADAPTER/train_data.json" ] && [ -f "$MODEL/config.json" ]; do sleep 5; done
for base in 4bit bf16; do
  t0=$(date +%s)
  python3 -m sqlshift eval --model $MODEL --adapter "$ADAPTER" --backend hf --benchmarks $BENCH \
    --set lm.load_in_4bit=$([ $base = 4bit ] && echo true || echo false) --set mmlu.subjects=all \
    --set mmlu.batch_size=64 --set spider-dev.batch_size=64 --set spider-dev.max_new_tokens=160 \
    -o /root/runs/$NAME-$base > /root/runs/$NAME-$base.out 2>&1
  echo "== rc=$? wall=$(( $(date +%s) - t0 )) s  $base base: sqlshift eval --adapter $ADAPTER"
  (cd /root/runs && tar -czf $OUT/$NAME-bases.tar.gz --exclude='*.safetensors' $NAME-4bit* $NAME-bf16*)  # 4-bit first
done
echo "== bases done"
