#!/usr/bin/env bash
# The rest of a GPU session in one background job, so that no step waits on a device call: once the last model
# part is in /root/m, de-quantise the carried GGUFs (beside a smoke check that may still run), wait until no smoke
# check runs, then run each argument as a command, one after another, each logged with its exit code and wall
# time. Run it from the repo root after benchmarks/gpu/smoke.sh was started, e.g.
#   (setsid nohup bash benchmarks/gpu/chain.sh "bash benchmarks/gpu/seed_protocol.sh" \
#     "STEPS=encode,compile bash benchmarks/gpu/speed.sh" > /root/res/chain.log 2>&1 < /dev/null &)
# Poll: grep -q '== chain done' /root/res/chain.log.
set -uo pipefail
( source benchmarks/gpu/prepare.sh  # joins the GGUF parts (all carried by now) and installs what is not yet
  for m in qwen15 qwen05; do
    [ -f /root/models/$m.gguf ] && bf16_model $m
  done )
while pgrep -f "^bash benchmarks/gpu/smoke.sh" > /dev/null; do sleep 2; done  # the commands need the GPU to themselves
for cmd in "$@"; do
  t0=$(date +%s)
  bash -c "$cmd"
  echo "== rc=$? wall=$(( $(date +%s) - t0 )) s  $cmd"
done
echo "== chain done"
