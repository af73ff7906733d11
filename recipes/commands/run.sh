#!/usr/bin/env bash
# The bundled models: synthesize the 35 Speech Commands words offline -> build manifests (synthesized +
# real shared clips, speaker-split v2 test-set part) -> train `commands` (12 classes) and `commands-ctc`
# (characters, warm-started from `commands`) -> evaluate on the held-out real speakers -> copy both into
# speech/pretrained/. README.md holds the results measured here.
#   bash recipes/commands/run.sh        env: SPEECH_DATA_DIR, OUT, VARIANTS, EPOCHS, CTC_EPOCHS, JOBS
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${SPEECH_DATA_DIR:-../shared/data}
OUT=${OUT:-runs/commands}
VARIANTS=${VARIANTS:-60}
EPOCHS=${EPOCHS:-40}
CTC_EPOCHS=${CTC_EPOCHS:-12}
JOBS=${JOBS:-2}

# 1. data: synthesized words and phrases, synthesized noise, manifests
speech synth --words speech-commands --engines flite,festival,espeak --variants "$VARIANTS" --jobs "$JOBS" \
  --seed 0 --quiet --out data/commands_synth/words
speech synth --phrases recipes/commands/phrases.txt --engines flite,festival,espeak --variants 12 --jobs "$JOBS" \
  --seed 0 --quiet --out data/commands_synth/phrases
speech synth --noise data/commands/noise --seconds 120 --babble-from data/commands_synth/words
python recipes/commands/build_manifests.py --synth data/commands_synth/words --phrases data/commands_synth/phrases \
  --noise data/commands/noise \
  --shared "$DATA" --out data/commands

# 2. the classifier
speech train recipe=commands trainer.max_epochs="$EPOCHS" trainer.progress=false hydra.run.dir="$OUT/commands"
speech evaluate --model "$OUT/commands/model.pt" --manifest data/commands/test.jsonl --out "$OUT/commands/eval"

# 3. the CTC model: words and phrases, the encoder warm-started from the classifier
speech train recipe=commands_ctc trainer.max_epochs="$CTC_EPOCHS" trainer.init_from="$OUT/commands/model.pt" \
  trainer.progress=false hydra.run.dir="$OUT/commands-ctc"
speech evaluate --model "$OUT/commands-ctc/model.pt" --manifest data/commands/test_words.jsonl \
  --grammar recipes/commands/grammar_35.txt --out "$OUT/commands-ctc/eval"

# 4. ship
mkdir -p speech/pretrained
cp "$OUT/commands/model.pt" speech/pretrained/commands.pt
cp "$OUT/commands-ctc/model.pt" speech/pretrained/commands-ctc.pt
python recipes/commands/report.py "$OUT"
