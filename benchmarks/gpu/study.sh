#!/usr/bin/env bash
# A study on one GPU in ONE `sqlshift run`: $CONFIG (default configs/seed-protocol.yaml: Qwen2.5-Coder-1.5B-Instruct,
# baseline + Run 1 + Run 2, Spider dev + MMLU 57) on $MODEL (default /root/models/qwen15, exported from the carried
# GGUF; /root/models/qwen05 for the 0.5B), into /root/runs/$NAME (default: the config file's stem), with the GPU's
# memory and busy share every 5 s. ONLY=a,b passes --only (a study split over sessions shares one run directory);
# RUN_OVERRIDES (YAML) adds training overrides to every run, RUN_FIELDS sets a run's fields (e.g. checkpoints); with WITH_HF=1 then Run 1's adapter through the other
# backend (lm.backend: hf, as an `adapter:` run) for the backend-agreement table. PREVIOUS=/abs/part1.tar.gz unpacks
# an earlier part's results (the $NAME.tar.gz this script wrote, carried back) into the run directory first, so that
# this part's report covers both (the earlier adapters are not in it: select only new runs with ONLY). Needs the
# s*, v* and q* (or r*) parts (pack.sh with WITH_QWEN=1 [WITH_QWEN05=1]). Long: start it in the background and
# poll, e.g.
#   mkdir -p /root/res && (CONFIG=configs/qwen15-qlora-seeds.yaml ONLY=baseline,run1 setsid nohup \
#     bash benchmarks/gpu/study.sh > /root/res/study.log 2>&1 < /dev/null &)
# Poll: grep -q '== done' /root/res/study.log. Results: /root/res/$NAME.tar.gz (fetch: cp /root/res/* $OUT/).
set -uo pipefail
source benchmarks/gpu/prepare.sh
set +e
cd $SNAP
CONFIG=${CONFIG:-configs/seed-protocol.yaml}
MODEL=${MODEL:-/root/models/qwen15}
NAME=${NAME:-$(basename "$CONFIG" .yaml)}
RUNS=/root/runs
[ -n "${PREVIOUS:-}" ] && tar -xzf "$PREVIOUS" -C $RUNS "$NAME" && echo "unpacked $PREVIOUS into $RUNS/$NAME"
if [ -n "${RUN_OVERRIDES:-}${RUN_FIELDS:-}" ]; then
  # RUN_OVERRIDES='{per_device_batch_size: 16}': training overrides of every run;
  # RUN_FIELDS='{run1-qlora: {checkpoints: [100, 200]}}': a run's own fields (its training, hence its cache, unchanged)
  python3 - $CONFIG $RUNS/$NAME-variant.yaml "${RUN_OVERRIDES:-{\}}" "${RUN_FIELDS:-{\}}" <<'PYEND'
import sys, yaml
from sqlshift.study.config import find_experiment
cfg = yaml.safe_load(open(find_experiment(sys.argv[1])))
over, fields = yaml.safe_load(sys.argv[3]) or {}, yaml.safe_load(sys.argv[4]) or {}
for run in cfg["runs"]:
    run["overrides"] = {**run.get("overrides", {}), **over}
    run.update(fields.get(run["name"], {}))
yaml.safe_dump(cfg, open(sys.argv[2], "w"), sort_keys=False)
PYEND
  CONFIG=$RUNS/$NAME-variant.yaml
fi
for m in qwen15 qwen05; do
  [ "$MODEL" = /root/models/$m ] && bf16_model $m
done
nvidia-smi --query-gpu=name,memory.used,memory.total,driver_version --format=csv,noheader
( while sleep 5; do nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader,nounits \
    | sed "s/^/$(date +%s) /"; done ) > $RUNS/$NAME.gpu-trace.txt 2>&1 &
TRACE=$!
t0=$(date +%s)
python3 -m sqlshift run $CONFIG --model $MODEL -o $RUNS/$NAME ${ONLY:+--only $ONLY} > $RUNS/$NAME.out 2>&1
echo "== rc=$? wall=$(( $(date +%s) - t0 )) s  sqlshift run $CONFIG ${ONLY:+--only $ONLY}"
kill $TRACE
KEEP=("$NAME" "$NAME.out" "$NAME.gpu-trace.txt")
if [ "${WITH_HF:-0}" = 1 ]; then
  python3 - $CONFIG $RUNS/$NAME-hf.yaml $RUNS/$NAME/train/run1 <<'PYEND'
import sys, yaml
from sqlshift.study.config import find_experiment
cfg = yaml.safe_load(open(find_experiment(sys.argv[1])))
cfg["name"], cfg["lm"] = cfg["name"] + "-hf", {"backend": "hf"}
cfg["runs"] = [{"name": "run1", "adapter": sys.argv[3]}]
cfg.pop("executor", None), cfg.pop("overlap", None)
yaml.safe_dump(cfg, open(sys.argv[2], "w"), sort_keys=False)
PYEND
  t0=$(date +%s)
  python3 -m sqlshift run $RUNS/$NAME-hf.yaml --model $MODEL -o $RUNS/$NAME-hf > $RUNS/$NAME-hf.out 2>&1
  echo "== rc=$? wall=$(( $(date +%s) - t0 )) s  sqlshift run $NAME-hf.yaml"
  KEEP+=("$NAME-hf" "$NAME-hf.out")
fi
cd $RUNS && tar -czf $OUT/$NAME.tar.gz --exclude='*.safetensors' --exclude='*.pt' --exclude='*.bin' \
  --exclude='checkpoint-*' "${KEEP[@]}"
echo "== done"
