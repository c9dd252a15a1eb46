#!/usr/bin/env bash
# On the GPU machine (source it): join the parts that benchmarks/gpu/pack.sh made and the device calls carried into
# /root/m, install the wheels (study: /tmp/site; vLLM: /tmp/site-vllm, first on the path: it pins its own
# pydantic), unpack the data to /root/data, join the Qwen GGUF, and snapshot the code to run into $SNAP (later calls
# re-copy the working tree; a job in the background must not see files change under it). Idempotent.
set -euo pipefail
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 VLLM_NO_USAGE_STATS=1 VLLM_DO_NOT_TRACK=1
M=/root/m
pipq() { python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$@" 2>&1 | grep -v WARNING || true; }
complete() {  # every part of set $1 (s, v, q, r) is in $M: pack.sh names them $1.KK-of-NN; older packs: any part
  local n want
  n=$(ls $M/$1.* 2>/dev/null | wc -l)
  [ "$n" -gt 0 ] || return 1
  want=$(ls $M/$1.* | head -1 | sed -n 's/.*-of-\([0-9]*\)$/\1/p')
  [ -z "$want" ] || [ "$n" -eq "$((10#$want))" ]
}
if [ ! -f /tmp/site/.done ] && complete s; then
  rm -rf /root/stage && mkdir -p /root/stage && cat $M/s.* | tar -xf - -C /root/stage
  pipq /tmp/site /root/stage/whl/*.whl
  mkdir -p /root/data && cp -r /root/stage/data/* /root/data/ && touch /tmp/site/.done
fi
if [ ! -f /tmp/site-vllm/.done ] && complete v; then
  rm -rf /root/vwhl && mkdir -p /root/vwhl && cat $M/v.* | tar -xf - -C /root/vwhl
  echo "installing $(ls /root/vwhl/*.whl | wc -l) vLLM wheels"
  pipq /tmp/site-vllm /root/vwhl/*.whl && touch /tmp/site-vllm/.done
fi
if [ ! -f /root/models/qwen15.gguf ] && complete q; then
  mkdir -p /root/models && cat $M/q.* > /root/models/qwen15.gguf
  echo "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046  /root/models/qwen15.gguf" | sha256sum -c
fi
if [ ! -f /root/models/qwen05.gguf ] && complete r; then
  mkdir -p /root/models && cat $M/r.* > /root/models/qwen05.gguf
  echo "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32  /root/models/qwen05.gguf" | sha256sum -c
fi
SNAP=/root/snap-$(date +%s%N)
mkdir -p $SNAP && cp -r src configs benchmarks $SNAP/
export SNAP PYTHONPATH=/tmp/site-vllm:/tmp/site:$SNAP/src SQLSHIFT_DATA_DIR=/root/data
# Results go to /root/res, not the device call's $OUT: the device tool empties $OUT at the start of every call, so a
# job in the background would lose what it wrote there. The call that fetches copies them: cp -r /root/res/. $OUT/
OUT=${GPU_RES:-/root/res}
mkdir -p "$OUT" /root/runs
bf16_model() {  # /root/models/NAME: the carried NAME.gguf de-quantised to a bf16 folder, once (≈ 1 min for the 1.5B)
  [ -f /root/models/$1/config.json ] || python3 -m sqlshift export-model /root/models/$1.gguf -o /root/models/$1 \
    --dtype bf16 > /root/runs/export-$1.log 2>&1
}
