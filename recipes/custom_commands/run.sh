#!/usr/bin/env bash
# Your own commands, no recordings: train the custom_commands recipe for five words the bundled models do
# not have as commands, then score it on the real Speech Commands clips of those words and of other words,
# against the bundled CTC model with a grammar (README.md holds the table measured here).
#   bash recipes/custom_commands/run.sh [extra Hydra overrides]   env: SPEECH_DATA_DIR, OUT, WORDS
set -euo pipefail
cd "$(dirname "$0")/../.."
export SPEECH_DATA_DIR=${SPEECH_DATA_DIR:-$(cd .. && pwd)/shared/data}
OUT=${OUT:-runs/custom_commands}
WORDS=${WORDS:-marvin,sheila,house,bird,happy}

start=$(date +%s)
speech train recipe=custom_commands "data.commands=[$WORDS]" trainer.progress=false hydra.run.dir="$OUT" "$@"
echo $(( $(date +%s) - start )) > "$OUT/train_seconds"
python recipes/custom_commands/evaluate_real.py --model "$OUT/model.pt" --words "$WORDS" \
  --shared "$SPEECH_DATA_DIR" --out "$OUT/real_eval"
