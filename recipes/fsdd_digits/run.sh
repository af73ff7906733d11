#!/usr/bin/env bash
# FSDD digits, leave-one-speaker-out: prepare -> train (one run per held-out speaker) -> evaluate -> export,
# then print the results table (README.md holds the one measured here).
#   bash recipes/fsdd_digits/run.sh [extra Hydra overrides]   env: SPEECH_DATA_DIR, OUT, EPOCHS, SPEAKERS, VARIANTS, JOBS,
#   ACCENTED=1 (also train on accented synthesized digits: not the default here, see README.md)
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${SPEECH_DATA_DIR:-../shared/data}
OUT=${OUT:-runs/fsdd_digits}
EPOCHS=${EPOCHS:-30}
SPEAKERS=${SPEAKERS:-"jackson lucas nicolas theo yweweler"}

speech prepare fsdd --root "$DATA/fsdd" --split loso --out data/fsdd >/dev/null
# more voices: the ten digits from the offline synthesizers (deterministic for the seed; resumable)
speech synth --words zero,one,two,three,four,five,six,seven,eight,nine --engines flite,festival,espeak \
  --variants "${VARIANTS:-60}" --jobs "${JOBS:-2}" --seed 0 --quiet --out data/fsdd_synth
MANIFESTS=data/fsdd_synth/synth.jsonl
if [ "${ACCENTED:-0}" = 1 ]; then
  # accented English: the same words as English phonemes spoken by eight other languages' espeak-ng voices
  speech synth --words zero,one,two,three,four,five,six,seven,eight,nine --engines espeak-accent \
    --variants "${VARIANTS:-60}" --jobs "${JOBS:-2}" --seed 0 --quiet --out data/fsdd_synth_accent
  MANIFESTS=$MANIFESTS,data/fsdd_synth_accent/synth.jsonl
fi
for spk in $SPEAKERS; do
  start=$(date +%s)
  speech train recipe=fsdd_digits data.root=data/fsdd data.fold="fold_$spk" trainer.max_epochs="$EPOCHS" \
    "data.extra_train_manifests=[$MANIFESTS]" \
    trainer.progress=false hydra.run.dir="$OUT/$spk" "$@"
  echo $(( $(date +%s) - start )) > "$OUT/$spk/train_seconds"
  speech evaluate --model "$OUT/$spk/model.pt" --manifest "data/fsdd/fold_$spk/test.jsonl" --out "$OUT/$spk/eval" >/dev/null
  speech export --model "$OUT/$spk/model.pt" --format onnx --out "$OUT/$spk/model.onnx"
done
python - "$OUT" $SPEAKERS <<'PY'
import json, sys
from pathlib import Path
out, speakers = Path(sys.argv[1]), sys.argv[2:]
rows, accs = [], []
for s in speakers:
    m = json.loads((out / s / "eval" / "metrics.json").read_text())
    secs = (out / s / "train_seconds").read_text().strip()
    accs.append(m["accuracy"])
    rows.append(f"| {s} | {m['count']} | {100 * m['accuracy']:.1f} | {secs} |")
print("| held-out speaker | test clips | accuracy % | train time (s) |\n|---|---|---|---|")
print("\n".join(rows))
print(f"| **mean** | | **{100 * sum(accs) / len(accs):.1f}** | |")
PY
