#!/usr/bin/env bash
# chain.sh started while the model parts still arrive, so that installing the wheels overlaps the carry calls:
# prepare.sh installs what is complete now (the s and v parts), then this waits for /root/m/all.done (touched by
# the call that carries the last part, after its copy) and runs chain.sh with the same arguments. E.g., in the call
# that carries the last v part:
#   (setsid nohup bash benchmarks/gpu/after_parts.sh "CONFIG=configs/qwen15-voting.yaml bash benchmarks/gpu/study.sh" \
#     > /root/res/chain.log 2>&1 < /dev/null &)
# and in the last call: cp .carry/parts/*/* /root/m/ && touch /root/m/all.done
set -uo pipefail
( source benchmarks/gpu/prepare.sh ) && echo "== wheels installed $(date -u +%T)"
while [ ! -f /root/m/all.done ]; do sleep 2; done
exec bash benchmarks/gpu/chain.sh "$@"
