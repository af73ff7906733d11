"""The Python API (``speech.load`` -> ``Model``): the same answers as the command line, on real clips."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import speech
from conftest import REPO_ROOT, run_speech

EXAMPLES = REPO_ROOT / "examples"
COMMAND_CLIPS = sorted(p for p in EXAMPLES.glob("*.wav") if p.stem in ("go", "left", "no", "stop", "yes"))


@pytest.fixture(scope="module")
def commands():
    return speech.load("commands", engine="torch")


def test_the_face_is_typed_and_importing_it_loads_no_torch():
    assert (REPO_ROOT / "speech" / "py.typed").is_file()
    for name in speech.__all__:
        assert getattr(speech, name) is not None, name
    code = "import sys, speech; print('torch' in sys.modules, speech.load.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "speech.api"]  # the torch import waits for load(); `import speech` stays fast
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        speech.nope
    from speech import api, streaming

    assert api.DEFAULT_GATE_DB == streaming.DEFAULT_GATE_DB  # written twice: the api module stays torch-free
    assert api.DEFAULT_REJECT == streaming.DEFAULT_REJECT
    from speech.streaming import detection

    assert api.LISTEN_SKIPPING == detection.LISTEN_SKIPPING


def test_transcribe_files_agrees_with_the_command_line(commands, capsys):
    rc, out, _ = run_speech(capsys, "transcribe", "--model", "commands", "--engine", "torch", "--top-k", "2", *COMMAND_CLIPS)
    assert rc == 0
    cli = [line.split("\t") for line in out.splitlines()]
    results = commands.transcribe([str(p) for p in COMMAND_CLIPS], top_k=2)
    assert len(results) == len(COMMAND_CLIPS)
    for row, r, path in zip(cli, results, COMMAND_CLIPS):
        assert row[1] == r.text == path.stem  # the example clips say their own names
        assert float(row[2]) == pytest.approx(r.score, abs=1e-4)
        assert [t for t, _ in r.alternatives] == [row[1], row[3]]
    one = commands.transcribe(COMMAND_CLIPS[0])
    assert isinstance(one, speech.Result) and one.text == COMMAND_CLIPS[0].stem


def test_arrays_at_their_own_rate_give_the_file_answer(commands, tmp_path):
    path = COMMAND_CLIPS[-1]
    wave, rate = sf.read(path, dtype="float32")
    assert rate == 16000
    from speech.audio import resample
    import torch

    at_8k = resample(torch.from_numpy(wave), 16000, 8000).numpy()
    sf.write(str(tmp_path / "8k.wav"), at_8k, 8000, subtype="FLOAT")
    from_file = commands.transcribe(path)
    as_array = commands.transcribe(wave)
    as_8k, from_8k_file = commands.transcribe([at_8k], sample_rate=8000), commands.transcribe(tmp_path / "8k.wav")
    assert as_array.text == from_file.text and as_array.score == pytest.approx(from_file.score, abs=1e-5)
    assert isinstance(as_8k, list) and as_8k[0].text == from_8k_file.text
    assert as_8k[0].score == pytest.approx(from_8k_file.score, abs=1e-5)  # both resampled to 16 kHz the same way
    with pytest.raises(ValueError, match="1-D"):
        commands.transcribe(np.zeros((2, 16000), dtype=np.float32))


def test_threshold_and_errors(commands, tmp_path):
    assert commands.transcribe(COMMAND_CLIPS[0], threshold=1.0).text == "_unknown_"
    with pytest.raises(speech.AudioError, match="missing.wav"):
        commands.transcribe(tmp_path / "missing.wav")
    with pytest.raises(ValueError, match="CTC"):
        commands.transcribe(COMMAND_CLIPS[0], grammar=["go", "stop"])
    with pytest.raises(ValueError, match="top-k"):
        commands.transcribe(COMMAND_CLIPS[0], top_k=0)
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    with pytest.raises(speech.ModelFileError, match="bad.pt"):
        speech.load(tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="engine"):
        speech.load("commands", engine="tflite")


def test_ctc_model_with_a_grammar_file_or_list(capsys):
    model = speech.load("commands-ctc", engine="torch")
    grammar = EXAMPLES / "grammar.txt"
    rc, out, _ = run_speech(capsys, "transcribe", "--model", "commands-ctc", "--engine", "torch", "--grammar", grammar,
                            EXAMPLES / "lights_on.wav", EXAMPLES / "volume_up.wav")
    cli = [line.split("\t")[1] for line in out.splitlines()]
    assert rc == 0 and cli == ["lights on", "volume up"]
    assert [r.text for r in model.transcribe([EXAMPLES / "lights_on.wav", EXAMPLES / "volume_up.wav"], grammar=grammar)] == cli
    phrases = [line for line in grammar.read_text().splitlines() if line and not line.startswith("#")]
    assert model.transcribe(EXAMPLES / "lights_on.wav", grammar=phrases + ["1 2 3"]).text == "lights on"  # "1 2 3": unspellable, dropped
    with pytest.raises(ValueError, match="no phrase"):
        model.transcribe(EXAMPLES / "lights_on.wav", grammar=["@@@"])


def spoken_stream(paths: list[Path], gap: float = 1.5, rate: int = 16000) -> np.ndarray:
    parts = [np.zeros(int(gap * rate), np.float32)]
    for p in paths:
        parts += [sf.read(p, dtype="float32")[0], np.zeros(int(gap * rate), np.float32)]
    rng = np.random.default_rng(0)
    audio = np.concatenate(parts)
    return audio + 0.002 * rng.standard_normal(len(audio)).astype(np.float32)


def test_segments_and_stream_agree_with_speech_listen(commands, tmp_path, capsys):
    audio = spoken_stream(COMMAND_CLIPS)
    found = commands.segments(audio, threshold=0.5)
    assert [r.text for r in found] == [p.stem for p in COMMAND_CLIPS]
    assert all(0 <= r.start < r.end <= len(audio) / 16000 for r in found)
    path = tmp_path / "stream.wav"
    sf.write(path, audio, 16000)
    rc, out, _ = run_speech(capsys, "listen", "--model", "commands", "--engine", "torch", "--input-file", path, "--fast", "--json")
    listened = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert rc == 0 and [d["label"] for d in listened] == [p.stem for p in COMMAND_CLIPS]
    stream = commands.stream(sample_rate=16000)
    detections = []
    for a in range(0, len(audio), 800):  # 50 ms blocks, as speech listen reads them
        detections += stream.push(audio[a : a + 800])
    detections += stream.finish()
    assert [(d.label, round(d.time, 3)) for d in detections] == [(d["label"], d["time"]) for d in listened]
    assert stream.seconds == pytest.approx(len(audio) / 16000, abs=0.01)
    with pytest.raises(ValueError, match="CTC"):
        commands.stream(grammar=["go"])
    # a false-accept rate instead of a threshold: the one the saved DEV curve gives for it
    from speech.streaming import threshold_for_false_accepts

    assert commands.operating_point.get("dev_curve"), "the bundled model holds its DEV curve"
    strict = commands.stream(sample_rate=16000, false_accepts_per_hour=2)
    expected = threshold_for_false_accepts(commands.operating_point, 2)
    assert expected["met"] and expected["false_accepts_per_hour"] <= 2
    assert strict.pipeline.stage.smoother.config.detection_threshold == expected["threshold"] > commands.operating_point["threshold"]
    with pytest.raises(ValueError, match="not both"):
        commands.stream(threshold=0.8, false_accepts_per_hour=2)
    with pytest.raises(ValueError, match="average_window_ms 300"):  # the curve holds for the smoothing it was measured with
        commands.stream(false_accepts_per_hour=2, average_window_ms=300)
