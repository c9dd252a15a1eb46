#!/usr/bin/env bash
# The seed protocol on one GPU in one `sqlshift run` (configs/seed-protocol.yaml): benchmarks/gpu/study.sh with its
# defaults, kept under this name for the commands in docs/results.md. Results: /root/res/seed-protocol.tar.gz.
CONFIG=${CONFIG:-configs/seed-protocol.yaml} NAME=${NAME:-seed-protocol} exec bash benchmarks/gpu/study.sh "$@"
