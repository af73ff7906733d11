#!/usr/bin/env bash
# Connected digit strings with CTC: prepare FSDD (leave-one-speaker-out folds) -> train on four speakers'
# strings -> evaluate on strings of the held-out speaker -> export. README.md holds the result measured here.
#   bash recipes/digit_strings_ctc/run.sh [extra Hydra overrides]   env: SPEECH_DATA_DIR, OUT, SPEAKER, EPOCHS, VARIANTS, JOBS, CLASSIFIER,
#   ACCENTED=1 (also train on accented synthesized digits, starting from a classifier trained with them: not the
#   default, see README.md)
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${SPEECH_DATA_DIR:-../shared/data}
OUT=${OUT:-runs/digit_strings_ctc}
SPEAKER=${SPEAKER:-lucas}
EPOCHS=${EPOCHS:-20}

speech prepare fsdd --root "$DATA/fsdd" --split loso --out data/fsdd >/dev/null
# more voices: the ten digits from the offline synthesizers (the same clips as recipes/fsdd_digits)
speech synth --words zero,one,two,three,four,five,six,seven,eight,nine --engines flite,festival,espeak \
  --variants "${VARIANTS:-60}" --jobs "${JOBS:-2}" --seed 0 --quiet --out data/fsdd_synth
MANIFESTS=data/fsdd_synth/synth.jsonl
export ACCENTED=${ACCENTED:-0}
if [ "$ACCENTED" = 1 ]; then
  # accented English: the same words as English phonemes spoken by eight other languages' espeak-ng voices
  speech synth --words zero,one,two,three,four,five,six,seven,eight,nine --engines espeak-accent \
    --variants "${VARIANTS:-60}" --jobs "${JOBS:-2}" --seed 0 --quiet --out data/fsdd_synth_accent
  MANIFESTS=$MANIFESTS,data/fsdd_synth_accent/synth.jsonl
  CLASSIFIER=${CLASSIFIER:-runs/fsdd_digits_accented/$SPEAKER/model.pt}
fi
# the encoder starts from the fsdd_digits classifier of the same fold, trained on the same data
# (trained first, 30 epochs, if it is not there)
CLASSIFIER=${CLASSIFIER:-runs/fsdd_digits/$SPEAKER/model.pt}
if [ ! -f "$CLASSIFIER" ]; then
  SPEAKERS="$SPEAKER" OUT="$(dirname "$(dirname "$CLASSIFIER")")" EPOCHS=30 bash recipes/fsdd_digits/run.sh
fi
start=$(date +%s)
speech train recipe=digit_strings_ctc trainer.init_from="$CLASSIFIER" data.root=data/fsdd data.fold="fold_$SPEAKER" trainer.max_epochs="$EPOCHS" \
  "data.extra_train_manifests=[$MANIFESTS]" \
  trainer.progress=false hydra.run.dir="$OUT/$SPEAKER" "$@"
echo $(( $(date +%s) - start )) > "$OUT/$SPEAKER/train_seconds"
# the test strings: the same generator as training (seeded), written out as WAV files + a manifest
python -m speech.data.digit_strings --manifest "data/fsdd/fold_$SPEAKER/test.jsonl" --count 300 --seed 7 \
  --out "data/digit_strings_test_$SPEAKER"
speech evaluate --model "$OUT/$SPEAKER/model.pt" --manifest "data/digit_strings_test_$SPEAKER/strings.jsonl" \
  --out "$OUT/$SPEAKER/eval"
speech export --model "$OUT/$SPEAKER/model.pt" --format onnx --out "$OUT/$SPEAKER/model.onnx"
python - "$OUT/$SPEAKER" <<'PY'
import json, sys
from pathlib import Path
run = Path(sys.argv[1])
m = json.loads((run / "eval" / "metrics.json").read_text())
print("| held-out speaker | test strings | sequence accuracy % | CER % | WER % | train time (s) |\n|---|---|---|---|---|---|")
print(f"| {run.name} | {m['count']} | {100 * m['sequence_accuracy']:.1f} | {100 * m['cer']:.1f} | {100 * m['wer']:.1f} | "
      f"{(run / 'train_seconds').read_text().strip()} |")
PY
