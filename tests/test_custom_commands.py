"""Your own commands from a word list: ``speech prepare commands``, the operating point, and the
``custom_commands`` recipe trained end to end on a tiny synthesized set (real synthesis, real training)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch

from conftest import REPO_ROOT, run_speech
from speech.calibrate import choose_operating_point
from speech.data.custom import edit_distance, near_misses, negative_texts, parse_commands, phonemes

needs_espeak = pytest.mark.skipif(not (shutil.which("espeak-ng") or shutil.which("espeak")), reason="espeak-ng is not installed")


def test_commands_are_normalized_and_never_their_own_negatives():
    commands = parse_commands(" Lights ON,lights off , open the door,lights on,")
    assert commands == ["lights on", "lights off", "open the door"]
    texts = negative_texts(commands, ["the", "door", "lights", "water", "on"], {"door": ["floor"]}, seed=0)
    assert not set(texts) & set(commands)
    for part in ("lights", "open the", "the door", "open", "floor", "water"):
        assert part in texts, part
    assert texts == negative_texts(commands, ["the", "door", "lights", "water", "on"], {"door": ["floor"]}, seed=0)


@needs_espeak
def test_near_misses_are_one_phoneme_away():
    vocabulary = ["mouse", "horse", "how's", "houses", "water", "bird", "third", "word", "heard", "happy", "tree"]
    found = near_misses(["house", "bird"], vocabulary, per_word=5)
    table = phonemes(["house", "bird", *vocabulary])
    assert "mouse" in found["house"] and "water" not in found["house"] and "bird" not in found["bird"]
    for word, close in found.items():
        for other in close:
            assert edit_distance(table[other], table[word]) <= 1, (word, other)


def test_operating_point_meets_the_false_accept_target():
    labels = ["go", "stop", "_unknown_", "_silence_"]
    gen = torch.Generator().manual_seed(0)
    targets = torch.tensor([0] * 50 + [1] * 50 + [2] * 80 + [3] * 20)
    logits = torch.randn(200, 4, generator=gen)
    logits[torch.arange(200), targets] += 2.5  # mostly right, with confident mistakes on some negatives
    probabilities = torch.softmax(logits, -1)
    point = choose_operating_point(probabilities, targets, labels, 0.05, "synthetic")
    assert point["false_accept_rate"] <= 0.05 and 0.5 <= point["threshold"] <= 1.0
    assert point["commands"] == 100 and point["non_commands"] == 100 and point["measured_on"] == "synthetic"
    lower = choose_operating_point(probabilities, targets, labels, 0.5)
    assert lower["threshold"] <= point["threshold"] and lower["hit_rate"] >= point["hit_rate"]
    p, best = probabilities.max(-1)
    fired = (best < 2) & (p >= point["threshold"])
    assert point["false_accept_rate"] == pytest.approx(float((fired & (targets >= 2)).sum()) / 100, abs=1e-5)
    with pytest.raises(ValueError, match="non-command"):
        choose_operating_point(probabilities[:100], targets[:100], labels, 0.05)


@needs_espeak
def test_recipe_trains_from_a_word_list_and_ships_an_operating_point(tmp_path, capsys):
    run = tmp_path / "run"
    prepare = (f"'commands --commands ${{speech_arg:${{data.commands}}}} --variants 5 --negative-words 40 "
               f"--near-misses 3 --engines espeak --synth-dir {tmp_path / 'synth'} --jobs 1 --quiet'")
    proc = subprocess.run(
        [sys.executable, "-m", "speech.train", "recipe=custom_commands", "data.commands=[lights on,marvin]",
         f"data.prepare={prepare}", "trainer.max_epochs=2", "model.hidden_size=24", "model.num_layers=1",
         "trainer.progress=false", "trainer.tensorboard=false", "trainer.stats_batches=2", f"hydra.run.dir={run}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)  # an unrelated folder, as a user would
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((run / "data" / "commands.json").read_text())
    assert summary["commands"] == ["lights on", "marvin"] and summary["engines"]["espeak"] > 0
    assert summary["counts"]["valid"]["_unknown_"] > 0 and summary["counts"]["train"]["lights on"] > 0
    import speech

    model = speech.load(run / "model.pt", engine="torch")
    assert set(model.labels) == {"lights on", "marvin", "_unknown_", "_silence_"}
    point = model.operating_point
    assert 0.5 <= point["threshold"] <= 1.0 and point["target_false_accept_rate"] == 0.01
    assert "validation" in point["measured_on"]
    clip = next((run / "data").glob("silence/*.wav"))
    result = model.transcribe(clip)
    rc, out, _ = run_speech(capsys, "transcribe", "--model", run / "model.pt", "--engine", "torch", clip)
    assert rc == 0 and out.split("\t")[1] == result.text  # the saved threshold is the default of both
    if result.score < point["threshold"] and result.text != "_silence_":
        assert result.text == "_unknown_"
    forced = model.transcribe(clip, threshold=0.0)
    assert forced.text == forced.alternatives[0][0]
    assert "operating point: threshold" in proc.stderr
    assert (REPO_ROOT / "recipes" / "custom_commands" / "README.md").is_file()


def test_saved_operating_point_is_checked_and_applies_only_to_commands(tmp_path, capsys):
    """A broken operating point in a model file is a one-line error naming it; a sound one turns weak
    commands into _unknown_ but leaves _silence_ alone, and speech evaluate scores the best class."""
    import speech
    from speech.checkpoint import load_model, save_model

    model = load_model("commands")
    bad = tmp_path / "bad.pt"
    save_model(model, bad, {**model.info, "operating_point": {"threshold": "high"}})
    rc, _, err = run_speech(capsys, "transcribe", "--model", bad, REPO_ROOT / "examples" / "yes.wav")
    assert rc == 2 and "bad.pt" in err and "operating point" in err and "Traceback" not in err
    strict = tmp_path / "strict.pt"
    save_model(model, strict, {**model.info, "operating_point": {"threshold": 1.0, "measured_on": "test"}})
    quiet = tmp_path / "quiet.wav"
    import numpy as np
    import soundfile as sf

    sf.write(quiet, 0.001 * np.random.default_rng(0).standard_normal(16000).astype("float32"), 16000)
    loaded = speech.load(strict, engine="torch")
    assert loaded.transcribe(quiet).text == "_silence_"  # not a command: the operating point does not apply
    assert loaded.transcribe(REPO_ROOT / "examples" / "yes.wav").text == "_unknown_"  # a command below 1.0
    assert loaded.transcribe(REPO_ROOT / "examples" / "yes.wav", threshold=0.0).text == "yes"
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": str(REPO_ROOT / "examples" / "yes.wav"), "duration": 1.0, "label": "yes"}) + "\n")
    rc, out, _ = run_speech(capsys, "evaluate", "--model", strict, "--manifest", manifest, "--engine", "torch", "--out", tmp_path / "ev")
    assert rc == 0 and json.loads((tmp_path / "ev" / "metrics.json").read_text())["accuracy"] == 1.0


def test_operating_point_without_non_command_classes_fails_before_training(tmp_path, shared_dataset):
    """FSDD's ten digits have no _unknown_/_silence_ class: a one-line error before the first epoch."""
    shared_dataset("fsdd")
    proc = subprocess.run(
        [sys.executable, "-m", "speech.train", "recipe=fsdd_digits", "trainer.operating_point_far=0.01",
         f"data.root={tmp_path / 'fsdd'}", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "operating_point_far needs a classifier with _unknown_ or _silence_" in proc.stderr
    assert "epoch=0" not in proc.stderr and not (tmp_path / "run" / "model.pt").exists()
