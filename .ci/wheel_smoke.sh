#!/usr/bin/env bash
# The wheel does everything: build it, install it into a fresh virtual environment, and from an unrelated
# temporary folder list the recipes, train one (one epoch, a tiny model, real FSDD clips), evaluate,
# transcribe, export, listen to a file and synthesize (where an engine is installed).
#   bash .ci/wheel_smoke.sh        env: SPEECH_DATA_DIR (default ../shared/data), PYTHON (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
export SPEECH_DATA_DIR=${SPEECH_DATA_DIR:-$(cd "$REPO/.." && pwd)/shared/data}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/speech-wheel.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
step() { echo "wheel smoke: $*"; }

step "build"
"${PYTHON:-python3}" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/dist" "$REPO" 2>/dev/null \
  || "${PYTHON:-python3}" -m pip wheel -q --no-deps -w "$WORK/dist" "$REPO"
"${PYTHON:-python3}" -m venv "$WORK/venv"
WHEEL=$(ls "$WORK"/dist/speech-*.whl)
"$WORK/venv/bin/pip" install -q "$WHEEL[export]" > "$WORK/pip.log" 2>&1 || { grep -v "^WARNING: Location" "$WORK/pip.log" | tail -20; exit 1; }
S="$WORK/venv/bin/speech"
PY="$WORK/venv/bin/python"
cp "$REPO/examples/yes.wav" "$REPO/examples/grammar.txt" "$REPO/examples/lights_on.wav" "$WORK/"
cd "$WORK"   # nothing of the checkout from here on
"$PY" - <<'PY'
import speech, pathlib
assert "site-packages" in pathlib.Path(speech.__file__).as_posix(), speech.__file__
print("wheel smoke: speech imported from", pathlib.Path(speech.__file__).parent)
PY

step "recipes"
"$S" train --list-recipes | grep -q '^fsdd_digits '
step "train"
"$S" train recipe=fsdd_digits data.root=data/fsdd data.fold=fold_theo data.max_items=64 trainer.max_epochs=1 \
  model.hidden_size=24 model.num_layers=1 trainer.progress=false trainer.tensorboard=false trainer.stats_batches=2 \
  hydra.run.dir=run > train.log 2>&1 || { tail -20 train.log; exit 1; }
test -s run/model.pt
step "evaluate"
"$S" evaluate --model run/model.pt --manifest data/fsdd/fold_theo/test.jsonl --out run/eval > /dev/null
test -s run/eval/metrics.json
step "transcribe"
"$S" transcribe yes.wav | grep -q $'\tyes\t'
"$S" transcribe --model commands-ctc --grammar grammar.txt lights_on.wav | grep -q $'\tlights on\t'
"$S" transcribe --model run/model.pt "$SPEECH_DATA_DIR/fsdd/recordings/0_theo_0.wav" > /dev/null
"$PY" -c "import speech; r = speech.load('commands').transcribe('yes.wav'); assert r.text == 'yes', r"
step "transcribe without torch (the bundled ONNX copy)"
"$PY" - <<'PY'
import sys
from speech.cli import main
from speech.lite import BUNDLED, PRETRAINED_DIR
assert (PRETRAINED_DIR / BUNDLED["commands"][1]).is_file(), "the wheel lacks speech/pretrained/commands.onnx"
assert main(["transcribe", "yes.wav"]) == 0
torch = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchaudio"))
assert not torch, f"speech transcribe yes.wav imported {torch[:3]}: is commands.onnx older than commands.pt?"
PY
step "export"
"$S" export --model run/model.pt --format onnx --out run/model.onnx > /dev/null
"$S" transcribe --model run/model.onnx "$SPEECH_DATA_DIR/fsdd/recordings/0_theo_0.wav" > /dev/null
step "listen"
"$S" listen --input-file yes.wav --fast --json > listen.out 2>&1 || { cat listen.out; exit 1; }
step "synth"
if "$S" synth --words yes --variants 1 --out synth > synth.log 2>&1; then
  test -s synth/synth.jsonl
else
  grep -q "no usable engine" synth.log && echo "wheel smoke: synth skipped (no synthesis engine installed)" \
    || { cat synth.log; exit 1; }
fi
echo "wheel smoke: passed"
