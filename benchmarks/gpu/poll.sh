#!/usr/bin/env bash
# Polls of a GPU session's background study (benchmarks/gpu/study.sh, alone or through chain.sh), from a device call
# that waits inside it (a machine idle for 30 s is given back): ROUNDS times, sleep, print the study's last log
# lines, then pack its run directory into $OUT, so that what ran so far comes back even when the session's device
# time ends before the study does. Stops early once chain.log says the chain is done.
#   bash benchmarks/gpu/poll.sh NAME [SLEEP_S] [ROUNDS]     e.g. bash benchmarks/gpu/poll.sh qwen15-transfer 40 6
# The pack leaves out checkpoints, optimizer/RNG states and adapters over 12 MiB (r = 8 adapters of the 1.5B model
# are 8.7 MB, fp32 as PEFT keeps them: they come back, so a later session can reuse them; r = 64 + MLP is 295 MB)
# and is split into 15 MiB pieces (a file over 16 MiB does not come back). Successive rounds write sets $NAME.a.*
# and $NAME.b.* in turn, each finished by its .done file, and delete the older set only then: a call cut off
# mid-write still returns the last complete set.
# Here: cat FILES_AT/NAME.X.part-* > run.tar.gz for the set X that has a .done file, tar -xzf, sqlshift report DIR.
# Also copied each round: $RES/chain.log and $RES/*bases.tar.gz (benchmarks/gpu/qlora_bases.sh).
set -uo pipefail
NAME=${1:?usage: poll.sh NAME [SLEEP_S] [ROUNDS]}
RUNS=${RUNS:-/root/runs}
RES=${RES:-/root/res}
OUT=${OUT:?OUT is the device call output folder}

pack() {  # $1: the set to write (a or b); the other set is deleted once this one is complete
  local other=$([ "$1" = a ] && echo b || echo a)
  (cd "$RUNS" && find "$NAME" -name '*.safetensors' -size +12M > "$RUNS/.poll-big.txt"
   tar -czf "$RUNS/.poll.tar.gz" --exclude='checkpoint-*' --exclude='*.pt' --exclude='*.bin' --exclude='*.lock' \
     -X "$RUNS/.poll-big.txt" "$NAME" $(ls "$NAME.out" "$NAME.gpu-trace.txt" 2>/dev/null))
  rm -f "$OUT/$NAME.$1".*
  split -b 15M -d -a 2 "$RUNS/.poll.tar.gz" "$OUT/$NAME.$1.part-"
  date -u +%FT%TZ > "$OUT/$NAME.$1.done"
  rm -f "$OUT/$NAME.$other".*
}

for round in $(seq 1 "${3:-1}"); do
  sleep "${2:-0}"
  [ -f "$RUNS/$NAME.out" ] && tr '\r' '\n' < "$RUNS/$NAME.out" | grep -E '^(INFO|WARNING|ERROR) ' \
    | tail -"${LINES_SHOWN:-6}" | cut -c1-160
  command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader
  # the host too: twice a machine was lost in a study's first minutes; this shows whether the host was the cause
  echo "host: load $(cut -d' ' -f1-3 /proc/loadavg), $(free -g | awk '/^Mem/ {print $3 " of " $2}') GiB used," \
    "disk $(df -h /root | awk 'NR==2 {print $3 " of " $2}')"
  cp "$RES/chain.log" "$RES"/*bases.tar.gz "$OUT"/ 2>/dev/null
  if [ -d "$RUNS/$NAME" ]; then
    pack $([ $((round % 2)) = 1 ] && echo a || echo b)
  else
    echo "no run directory $RUNS/$NAME yet"
  fi
  if grep -q '== chain done' "$RES/chain.log" 2>/dev/null; then grep '== ' "$RES/chain.log"; break; fi
done
ls "$OUT" | tr '\n' ' '; echo
