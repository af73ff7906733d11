#!/usr/bin/env bash
# Google Speech Commands v0.02: download + prepare (12 or 35 classes) -> train -> evaluate -> export.
#   bash recipes/speech_commands/run.sh [extra Hydra overrides]
#   env: TASK=12|35 (default 12), SC_ROOT=/path/to/speech_commands_v0.02 (skip the download), OUT
set -euo pipefail
cd "$(dirname "$0")/../.."
TASK=${TASK:-12}
OUT=${OUT:-runs/speech_commands_$TASK}
ROOT_ARG=""
[ -n "${SC_ROOT:-}" ] && ROOT_ARG="--root $SC_ROOT"
DATA=data/speech_commands_v2_$TASK

speech prepare speech-commands --version 2 --task "$TASK" $ROOT_ARG --out "$DATA"
labels=()
[ "$TASK" = 35 ] && labels=(data.labels=null)
speech train recipe=speech_commands data.root="$DATA" data.prepare=null "${labels[@]}" \
  trainer.progress=false hydra.run.dir="$OUT" "$@"
speech evaluate --model "$OUT/model.pt" --manifest "$DATA/test.jsonl" --out "$OUT/eval"
speech export --model "$OUT/model.pt" --format onnx --out "$OUT/model.onnx"
