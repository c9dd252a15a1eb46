#!/usr/bin/env bash
# Issue 22's speed figures on one GPU, each a before/after in one process: attention for padding-free rows
# (bench_varlen.py: SDPA's packed mask vs variable-length flash attention on a random 1.5B-shaped model), Run 1's
# training shape (bench_train.py on Qwen2.5-Coder-1.5B: the plain transformers+peft loop, fast, fast-varlen and
# fast-varlen at 16 x 1 micro-batches; then 16 x 1 without liger, compiled or not, against liger's), and MMLU 57 letter scoring
# (bench_vllm.py, vLLM only: one-step logprob_token_ids at vLLM's scheduling defaults, then a second engine with
# larger limits; HF and prompt log-probs were timed before, BACKENDS=hf,vllm PROMPT_LOGPROBS=1 time them again).
# Needs the s*, v* and q* parts (pack.sh with WITH_QWEN=1). STEPS=encode,varlen,train,compile,vllm,mmluprof picks
# steps (mmluprof is not in the default set);
# TRAIN_VARIANTS the train step's variants. In the background:
#   mkdir -p /root/res && (setsid nohup bash benchmarks/gpu/speed.sh > /root/res/speed.out 2>&1 < /dev/null &)
#   grep -q '== speed done' /root/res/speed.log; fetch with cp -r /root/res/. $OUT/
set -uo pipefail
PROF_BACKENDS=${PROF_BACKENDS:-vllm,hf}
source benchmarks/gpu/prepare.sh
set +e
cd $SNAP
Q=/root/models/qwen15
LOG=$OUT/speed.log
bf16_model qwen15
step() {  # name, command...
  local t0=$(date +%s)
  "${@:2}" > $OUT/$1.log 2>&1
  local rc=$?
  grep -v -E "it/s\]|s/it\]|^\s*$" $OUT/$1.log | grep -E "^\{|Error|error" | tail -20 >> $LOG
  echo "== rc=$rc wall=$(( $(date +%s) - t0 )) s  $1" | tee -a $LOG
}
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader | tee $LOG
STEPS=,${STEPS:-encode,varlen,train,compile,vllm},
[[ $STEPS == *,encode,* ]] && step encode python3 benchmarks/bench_encode.py --tokenizer $Q --mmlu-dir /root/data/mmlu
[[ $STEPS == *,varlen,* ]] && step varlen python3 benchmarks/bench_varlen.py
[[ $STEPS == *,train,* ]] && step train python3 benchmarks/bench_train.py --model $Q --spider-dir /root/data/spider \
  --variants ${TRAIN_VARIANTS:-plain,fast,fast-varlen,fast-varlen-16x1} --steps 40 --json $OUT/bench_train.json
[[ $STEPS == *,compile,* ]] && step compile python3 benchmarks/bench_train.py --model $Q --spider-dir /root/data/spider \
  --variants fast-varlen-16x1-noliger,fast-varlen-16x1-noliger+compile,fast-varlen-16x1 --steps 40 --json $OUT/bench_train_compile.json
PL=$([ "${PROMPT_LOGPROBS:-0}" = 1 ] && echo --prompt-logprobs || echo --no-prompt-logprobs)
[[ $STEPS == *,vllm,* ]] && step vllm python3 benchmarks/bench_vllm.py --model $Q --spider-dir /root/data/spider \
  --mmlu-dir /root/data/mmlu --mmlu-n 14042 --modes letter --backends ${BACKENDS:-vllm} $PL \
  --tuned max_num_batched_tokens=65536,max_num_seqs=1024 --out $OUT/bench_vllm
# where MMLU 57's time goes (session 9: vLLM 24 s, transformers 35 s, against ≈ 7.4 s of GPU work for its 1.69 M
# context tokens): one `sqlshift eval` of MMLU 57 per backend under cProfile, vLLM's engine core in this process
# (VLLM_ENABLE_V1_MULTIPROCESSING=0) so the profile sees both sides; run.log gives MMLU's own seconds
for B in ${PROF_BACKENDS//,/ }; do
  [[ $STEPS == *,mmluprof,* ]] && step mmluprof-$B env VLLM_ENABLE_V1_MULTIPROCESSING=0 python3 -m cProfile \
    -o $OUT/mmlu-$B.prof -m sqlshift eval --model $Q --backend $B --benchmarks mmlu --set mmlu.subjects=all \
    --set mmlu.batch_size=64 -o /root/runs/mmluprof-$B \
    && python3 benchmarks/gpu/top_functions.py $OUT/mmlu-$B.prof > $OUT/mmlu-$B.prof.txt
done
echo "== speed done" | tee -a $LOG
