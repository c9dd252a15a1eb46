#!/usr/bin/env bash
# One-GPU session for issue 15: install the carried vLLM 0.26.0 wheels, then HF vs vLLM through sqlshift's LM
# contract (benchmarks/bench_vllm.py: 972 Spider dev prompts + EX agreement, MMLU subset letter/cloze), and, with
# VLLM_GPU_TEST=1, the GPU test of tests/test_lm_vllm.py. Everything lands under $OUT (results.jsonl,
# generations.jsonl, bench.log, pytest.log: within the 8 files that come back). Plan ≈ 6-8 min on an H100 the first
# time (wheel install ~1 min, HF generate ~30 s, vLLM engine start ~160 s, EX twice); give it timeout_s=600.
# Expects, on the (warm) machine:
#   - what benchmarks/gpu/setup.sh expects (/root/m: model parts, wheels, data) -> /root/models/qwen15, /root/data
#   - the vLLM wheels under .carry/vllm/: the 111 *.whl of shared/gpu/vllm-0.26.0-wheels.txt, or the parts of
#     the one tar that holds them (any names sorting in order, e.g. vllm.tar.part00..14), carried one per call
# Usage: [VLLM_GPU_TEST=1] bash benchmarks/gpu/vllm_session.sh [MODEL] [MMLU_N]   (defaults /root/models/qwen15, 1000)
# To see which wheels offline use imports (results.jsonl, task "imported"), run once more with the engine in-process:
#   VLLM_ENABLE_V1_MULTIPROCESSING=0 bash benchmarks/gpu/vllm_session.sh /root/models/qwen15 100
# Wheels go to their own --target, first on PYTHONPATH: vLLM pins pydantic and friends newer than the study's
# /tmp/site, and a separate folder leaves the study's install untouched.
set -euo pipefail
source benchmarks/gpu/setup.sh
export VLLM_NO_USAGE_STATS=1 VLLM_DO_NOT_TRACK=1
MODEL=${1:-/root/models/qwen15}
MMLU_N=${2:-1000}
CARRY=.carry/vllm
SITE=/tmp/site-vllm
if [ ! -f $SITE/vllm/__init__.py ]; then
  WHL=$CARRY
  if ! compgen -G "$CARRY/*.whl" > /dev/null; then   # parts of one tar: join in name order, unpack
    WHL=/tmp/vllm-whl
    mkdir -p $WHL
    cat $(ls $CARRY/* | sort) > /tmp/vllm-whl.tar   # a file, so tar detects any compression itself
    tar -xf /tmp/vllm-whl.tar -C $WHL && rm /tmp/vllm-whl.tar
  fi
  mapfile -t wheels < <(find $WHL -name '*.whl' | sort)
  echo "installing ${#wheels[@]} wheels (expect 111)"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $SITE "${wheels[@]}"
fi
export PYTHONPATH=$SITE:$PYTHONPATH
python3 -c "import vllm, torch, transformers; print('vllm', vllm.__version__, 'torch', torch.__version__, \
'transformers', transformers.__version__, torch.cuda.get_device_name(0))"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv
python3 benchmarks/bench_vllm.py --model "$MODEL" --spider-dir "$SQLSHIFT_DATA_DIR/spider" \
  --mmlu-dir "$SQLSHIFT_DATA_DIR/mmlu" --mmlu-n "$MMLU_N" --out "$OUT" 2>&1 | tee "$OUT/bench.log"
# The GPU test starts a second engine (SmolLM2, ~1-2 min): opt in, best in a later call on the warm machine.
if [ "${VLLM_GPU_TEST:-0}" = 1 ] && python3 -c "import pytest" 2>/dev/null; then
  SQLSHIFT_VLLM_TEST_MODEL=/root/models/smollm2 python3 -m pytest -q -p no:cacheprovider -k on_gpu \
    tests/test_lm_vllm.py 2>&1 | tee "$OUT/pytest.log" || true
fi
