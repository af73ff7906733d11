"""``speech.lite``: the torch-free path of ``speech transcribe`` for the bundled ``commands`` model.

Checks, on real Speech Commands clips from ``../shared/data``: the shipped ``commands.onnx`` was made from
the shipped ``commands.pt`` (a retrain without ``speech export --bundled`` fails here) and matches it within
the export tolerance; the lite path prints what the PyTorch path prints (the only difference allowed: a
score whose float32 value lies within a hair of a rounding boundary of the 4 printed decimals); it
applies an operating point as the Recognizer does; torch is never imported on it (a fresh process);
bad files get the PyTorch path's one-line errors and the rest go on; files it cannot answer for (other
sample rates, options) go to the PyTorch path.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from speech import lite
from speech.batch import Item
from conftest import run_speech, shared_data_dir

onnx = pytest.importorskip("onnx", reason="the lite path needs onnxruntime (the 'export' extra)")
pytest.importorskip("onnxruntime", reason="the lite path needs onnxruntime (the 'export' extra)")

torch.set_num_threads(1)
COMMANDS = shared_data_dir() / "speech_commands_v2_test_dev"
pytestmark = pytest.mark.skipif(not COMMANDS.is_dir(), reason=f"real audio data not found at {COMMANDS} (set SPEECH_DATA_DIR)")
BUNDLED_PT = lite.PRETRAINED_DIR / "commands.pt"
BUNDLED_ONNX = lite.PRETRAINED_DIR / "commands.onnx"
REGENERATE = "run 'speech export --bundled' after retraining commands.pt"
speech = run_speech  # speech(capsys, *argv) -> (exit status, stdout, stderr)


def real_clips(per_class: int = 4) -> list[Path]:
    """``per_class`` clips of each of the 12 class folders (48 clips), sorted."""
    folders = sorted(p for p in COMMANDS.iterdir() if p.is_dir())
    return [f for folder in folders for f in sorted(folder.glob("*.wav"))[:per_class]]


@pytest.fixture(scope="module")
def clips() -> list[Path]:
    return real_clips()


@pytest.fixture(scope="module")
def torch_model():
    from speech.checkpoint import load_model

    return load_model(BUNDLED_PT)


def only_rounding_apart(ours: str, theirs: str, exact: dict[str, list[float]]) -> bool:
    """Two TSV lines with the same path and labels whose scores are equal, or one unit of the 4th decimal
    apart with the unrounded score (``exact``: path -> scores from ``--format json``) within 1e-5 of the
    rounding boundary between them."""
    a, b = ours.split("\t"), theirs.split("\t")
    if len(a) != len(b) or a[0] != b[0] or a[1::2] != b[1::2]:
        return False
    for k, (x, y) in enumerate(zip(a[2::2], b[2::2])):
        if x != y:
            boundary = (float(x) + float(y)) / 2
            if abs(float(x) - float(y)) > 1.01e-4 or abs(exact[a[0]][k] - boundary) > 1e-5:
                return False
    return True


def lite_model_for(argv: list[str], items: list):
    """:func:`speech.transcribe.lite_model` for ``speech transcribe ARGV`` over ``items``."""
    import argparse

    from speech.transcribe import add_arguments, lite_model

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return lite_model(parser.parse_args(argv), items)


# ------------------------------------------------------------------------------ the shipped files
def test_bundled_onnx_was_made_from_the_bundled_model(torch_model, clips):
    assert BUNDLED_ONNX.is_file(), f"{BUNDLED_ONNX} is missing: {REGENERATE}"
    model = lite.LiteModel.open(BUNDLED_ONNX)
    source = model.metadata.get("source", {})
    assert source.get("sha256") == lite.sha256_of(BUNDLED_PT), f"commands.onnx was not made from this commands.pt: {REGENERATE}"
    assert lite.LiteModel.open(BUNDLED_ONNX, source=BUNDLED_PT) is not None
    assert model.labels == list(torch_model.labels) and model.sample_rate == torch_model.sample_rate
    assert model.info == json.loads(json.dumps(torch_model.info, default=str))  # clip length, operating point, ...
    # the probabilities on real clips, within the export check's tolerance
    from speech.export import CHECK_TOLERANCE

    waves = [lite.fit_to_length(lite.read_audio(p)[0], model.pad_to) for p in clips]
    ours = np.stack(model.forward(waves))
    with torch.inference_mode():
        reference = torch_model(torch.from_numpy(np.stack(waves)), torch.full((len(waves),), model.pad_to))[0].numpy()
    assert np.abs(ours - reference).max() <= CHECK_TOLERANCE, REGENERATE
    assert np.abs(torch.softmax(torch.from_numpy(ours), -1).numpy() - torch.softmax(torch.from_numpy(reference), -1).numpy()).max() < 1e-4
    # the DFT basis is computed in the graph: the file stays about the size of the model's weights
    assert BUNDLED_ONNX.stat().st_size < 1.2 * BUNDLED_PT.stat().st_size


def test_a_copy_made_from_another_model_is_not_used(tmp_path):
    other = tmp_path / "commands.pt"
    other.write_bytes(BUNDLED_PT.read_bytes() + b"\0")
    assert lite.LiteModel.open(BUNDLED_ONNX, source=other) is None
    assert lite.LiteModel.open(BUNDLED_ONNX, source=tmp_path / "missing.pt") is None


def test_constants_and_fit_to_length_agree_with_the_torch_modules(torch_model):
    from speech import audio, recognizer
    from speech.data.dataset import fit_to_length

    assert lite.AUDIO_EXTENSIONS == audio.AUDIO_EXTENSIONS and lite.DEFAULT_MAX_DURATION == audio.DEFAULT_MAX_DURATION
    assert lite.UNKNOWN == recognizer.UNKNOWN and lite.NON_COMMANDS == recognizer.NON_COMMANDS
    assert lite.MAX_WINDOW_SECONDS == recognizer.Recognizer(torch_model).max_window_seconds
    wave = np.random.default_rng(0).standard_normal(1001).astype(np.float32)
    for n in (1001, 1000, 999, 1600, 1601, 500, 501):
        assert np.array_equal(lite.fit_to_length(wave, n), fit_to_length(torch.from_numpy(wave), n).numpy()), n


# ----------------------------------------------------------------------------------- the answers
def test_lite_output_equals_the_torch_path(capsys, clips):
    rc, ours, err = speech(capsys, "transcribe", "--top-k", 3, *clips)  # the lite path (checked below)
    assert rc == 0, err
    rc, theirs, err = speech(capsys, "transcribe", "--engine", "torch", "--top-k", 3, *clips)
    assert rc == 0, err
    rc, exact, _ = speech(capsys, "transcribe", "--engine", "torch", "--top-k", 3, "--format", "json", *clips)
    exact = {row["path"]: [a["score"] for a in row["alternatives"]] for row in map(json.loads, exact.splitlines())}
    ours, theirs = ours.splitlines(), theirs.splitlines()
    assert len(ours) == len(theirs) == len(clips)
    assert all(only_rounding_apart(a, b, exact) for a, b in zip(ours, theirs)), [(a, b) for a, b in zip(ours, theirs) if a != b]
    assert sum(a == b for a, b in zip(ours, theirs)) >= len(clips) - 2  # rounding ties are rare (6 of 1,451 clips)
    assert isinstance(lite_model_for(["--top-k", "3", "x"], [Item(str(p)) for p in clips]), lite.LiteModel)


def test_operating_point_and_threshold_as_the_recognizer(capsys, monkeypatch, tmp_path, clips):
    """An ONNX file whose metadata holds an operating point: the lite path and the Recognizer (which runs
    the same file in onnxruntime) print the same bytes, weak commands turned into _unknown_."""
    import speech.transcribe as transcribe

    rc, plain, err = speech(capsys, "transcribe", *clips)
    assert rc == 0, err
    point = sorted(float(line.split("\t")[2]) for line in plain.splitlines())[len(clips) // 4]  # a quarter weaker
    proto = onnx.load(str(BUNDLED_ONNX))
    entry = next(p for p in proto.metadata_props if p.key == lite.METADATA_KEY)
    meta = json.loads(entry.value)
    meta["info"]["operating_point"] = {"threshold": point, "measured_on": "a test"}
    entry.value = json.dumps(meta)
    path = tmp_path / "with_point.onnx"
    onnx.save(proto, str(path))
    runs = {}
    for extra in ([], ["--threshold", "0.6"], ["--top-k", "2", "--format", "csv"]):
        assert isinstance(lite_model_for([*extra, "--model", str(path), "x"], [Item(str(clips[0]))]), lite.LiteModel)
        runs[tuple(extra)] = speech(capsys, "transcribe", "--model", path, *extra, *clips)
    monkeypatch.setattr(transcribe, "lite_model", lambda *args: None)  # now the Recognizer answers, same file
    for extra, (rc, ours, err) in runs.items():
        rc_r, theirs, err_r = speech(capsys, "transcribe", "--model", path, *extra, *clips)
        assert rc == rc_r == 0, err + err_r
        assert ours == theirs, extra
    weak = [line for line in runs[()][1].splitlines() if float(line.split("\t")[2]) < point]
    assert weak and all(line.split("\t")[1] in lite.NON_COMMANDS for line in weak)


def test_stereo_file_as_the_torch_path(capsys, tmp_path, clips):
    mono, rate = sf.read(str(clips[-1]), dtype="float32")
    path = tmp_path / "stereo.wav"
    sf.write(str(path), np.stack([mono, 0.5 * mono], 1), rate, subtype="PCM_16")
    rc, ours, _ = speech(capsys, "transcribe", path)
    rc2, theirs, _ = speech(capsys, "transcribe", "--engine", "torch", path)
    assert rc == rc2 == 0 and ours.split("\t")[1] == theirs.split("\t")[1]
    assert abs(float(ours.split("\t")[2]) - float(theirs.split("\t")[2])) <= 1.01e-4


# ------------------------------------------------------------------------------- no torch, errors
def test_torch_is_not_imported_on_the_lite_path(clips, tmp_path):
    code = ("import json, sys\nfrom speech.cli import main\nrc = main(sys.argv[1:])\n"
            "print(json.dumps([rc, sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchaudio'))]))")
    good, missing = str(clips[0]), str(tmp_path / "missing.wav")

    def run(*argv: str) -> tuple[list[str], str, str]:
        """``speech ARGV`` in a fresh process: (its answer lines, [exit status, torch modules], stderr)."""
        proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120,
                              cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
        *lines, last = proc.stdout.splitlines() or [""]
        return lines, last, proc.stderr

    lines, last, err = run("transcribe", good, missing)
    assert json.loads(last) == [1, []], err  # one file failed, torch never imported
    assert len(lines) == 1 and lines[0].startswith(f"{good}\t")
    assert err.splitlines() == [f"speech transcribe: {missing}: no such file", "speech transcribe: 1 of 2 inputs failed"]
    # worker processes (the default from 1,000 files on), forked from this one: the same bytes, no torch
    one, last, err = run("transcribe", *map(str, clips), missing)
    assert json.loads(last) == [1, []], err
    two, last, err2 = run("transcribe", "--workers", "2", "--group-size", "5", *map(str, clips), missing)
    assert json.loads(last) == [1, []], err2
    assert two == one and len(one) == len(clips) and err2 == err
    _, last, err = run("transcribe", "--engine", "torch", good)
    assert json.loads(last)[1], "the check sees torch where it is imported"


def bad_files(folder: Path, good: Path) -> list[Path]:
    folder.mkdir()
    data = good.read_bytes()
    (folder / "empty.wav").write_bytes(b"")
    (folder / "notes.wav").write_text("this is not audio\n")
    (folder / "header.wav").write_bytes(data[:30])
    (folder / "cut.wav").write_bytes(data[: len(data) // 2])
    sf.write(str(folder / "zero.wav"), np.zeros(0), 16000, subtype="PCM_16")
    x = np.zeros(4000, dtype=np.float32)
    x[100] = np.nan
    sf.write(str(folder / "nan.wav"), x, 16000, subtype="FLOAT")
    sf.write(str(folder / "long.wav"), np.zeros(16000 * 3, dtype=np.float32), 16000, subtype="PCM_16")
    return sorted(folder.iterdir())


def test_bad_files_get_the_torch_paths_one_line_errors(capsys, tmp_path, clips):
    bad = bad_files(tmp_path / "bad", clips[0])
    argv = ["transcribe", "--max-duration", "2", clips[0], *bad, tmp_path / "missing.wav", clips[1]]
    rc, ours, err = speech(capsys, *argv)
    rc_t, theirs, err_t = speech(capsys, *argv[:1], "--engine", "torch", *argv[1:])
    assert rc == rc_t == 1
    assert [line.split("\t")[:2] for line in ours.splitlines()] == [line.split("\t")[:2] for line in theirs.splitlines()]
    assert len(ours.splitlines()) == 2
    assert err == err_t  # each bad file on one line, worded the same
    assert len(err.splitlines()) == len(bad) + 2 and "Traceback" not in err
    for path in bad:
        assert sum(str(path) in line for line in err.splitlines()) == 1


def test_what_the_lite_path_leaves_to_the_torch_path(tmp_path, clips):
    import speech.transcribe as transcribe

    at_8k = tmp_path / "8k.wav"
    wave, _ = sf.read(str(clips[0]), dtype="float32")
    sf.write(str(at_8k), wave[::2], 8000, subtype="PCM_16")
    long = tmp_path / "long.wav"
    sf.write(str(long), np.zeros(16000 * 31, dtype=np.float32), 16000, subtype="PCM_16")
    good = [Item(str(clips[0]))]
    assert isinstance(lite_model_for(["--engine", "onnx", "--threshold", "0.5", "x"], good), lite.LiteModel)
    many = good * transcribe.LITE_UP_TO  # from here on PyTorch's workers, unless onnx is asked for
    assert isinstance(lite_model_for(["--engine", "onnx", "x"], many), lite.LiteModel)
    assert isinstance(lite_model_for(["x"], many[:-1]), lite.LiteModel) and lite_model_for(["x"], many) is None
    for argv, items in (
        (["--engine", "torch"], good), (["--segments"], good), (["--max-window", "5"], good),
        (["--device", "cuda"], good), (["--model", "commands-ctc"], good), (["--top-k", "0"], good),
        (["--threshold", "2"], good), ([], [Item(str(at_8k))]),
        ([], [Item(str(long))]), ([], [Item(str(clips[0]), offset=0.1)]),
    ):
        assert lite_model_for([*argv, "x"], items) is None, (argv, items)


def test_cold_start_benchmark_measures_the_lite_path():
    pytest.importorskip("pocketsphinx")
    from speech.bench.transcribe import benchmark_cold_start, format_cold_start

    result = benchmark_cold_start(repeats=1, data_dir=str(COMMANDS.parent))
    cold = result["cold_start"]
    assert cold["imports_torch"] is False and cold["ours_s"] > 0 and cold["sphinx_s"] > 0
    assert "(torch not imported)" in format_cold_start(result)
