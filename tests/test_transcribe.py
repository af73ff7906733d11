"""``speech transcribe``: formats, thresholds, grammar, long audio, odd audio files, broken files, stdin,
manifests, Ctrl-C, and one run of the real console script.

Models are made here without a training recipe: random-weight models for format/plumbing checks, and
a tiny classifier overfit in ~2 s on a few FSDD digits (placed in noise) for checks whose answer must
be stable (odd sample rates, segment times). Audio comes from ``../shared/data``.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from speech.audio import load_audio, resample
from speech.checkpoint import save_model
from speech.features import FeatureConfig
from speech.models import ModelConfig, SpeechModel
from speech.text import CHARACTERS
from conftest import run_speech, shared_data_dir

torch.set_num_threads(1)

DATA = shared_data_dir()
COMMANDS = DATA / "speech_commands_v2_test_dev"
FSDD = DATA / "fsdd" / "recordings"
pytestmark = pytest.mark.skipif(
    not (COMMANDS.is_dir() and FSDD.is_dir()), reason=f"real audio data not found at {DATA} (set SPEECH_DATA_DIR)"
)
DIGITS = ["zero", "one", "two", "three", "_silence_"]
TSV_LINE = re.compile(r"^[^\t]+\t[^\t]*\t\d+\.\d{4}$")


# ------------------------------------------------------------------------------------------ helpers
speech = run_speech  # speech(capsys, *argv) -> (exit status, stdout, stderr)


def command_clips(word: str, n: int) -> list[Path]:
    return sorted((COMMANDS / word).glob("*.wav"))[:n]


def random_model(path: Path, head: str = "classification", labels=None, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    labels = labels or (CHARACTERS if head == "ctc" else ["yes", "no", "up", "down", "_unknown_", "_silence_"])
    model = SpeechModel(ModelConfig(head=head, hidden_size=16, num_layers=1), FeatureConfig(n_mels=20, normalize="utterance"), labels)
    save_model(model, path, info={"clip_seconds": 1.0})
    return path


def noise(n: int, gen: torch.Generator, level: float = 0.002) -> torch.Tensor:
    return level * torch.randn(n, generator=gen)


def digit_clip(label: str, n: int) -> torch.Tensor:
    return load_audio(FSDD / f"{DIGITS.index(label)}_theo_{n}.wav", 16000)


def trained_digit_model(path: Path) -> Path:
    """A 5-class classifier (four digits + _silence_) overfit on 3 clips per digit, each placed at three
    offsets in 1 s of low noise (a window holding only a quarter of a word is _silence_). It answers its
    training clips with probability ~0.999, so its answers are stable enough to test segment times and
    resampled copies."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    waves, targets = [], []
    for i, label in enumerate(DIGITS[:4]):
        for n in range(3):
            clip = digit_clip(label, n)
            for frac in (0.0, 0.5, 1.0):
                w = noise(16000, gen)
                off = int(frac * (16000 - len(clip)))
                w[off : off + len(clip)] += clip
                waves.append(w)
                targets.append(i)
            # a short clip the recognizer centres in the window with zero padding, as training does
            w = torch.zeros(16000)
            short = noise(int(0.7 * 16000), gen)
            short[1600 : 1600 + len(clip)] += clip[: len(short) - 1600]
            off = (16000 - len(short)) // 2
            w[off : off + len(short)] = short
            waves.append(w)
            targets.append(i)
            # only an edge of the word inside the window is not a command (keeps --segments clean)
            k = len(clip) // 4
            for a, b, part in ((0, k, clip[-k:]), (16000 - k, 16000, clip[:k])):
                w = noise(16000, gen)
                w[a:b] += part
                waves.append(w)
                targets.append(4)
    for k in range(8):
        waves.append(noise(16000, gen) * (1 + k))
        targets.append(4)
    batch, lengths, y = torch.stack(waves), torch.full((len(waves),), 16000), torch.tensor(targets)
    model = SpeechModel(ModelConfig(hidden_size=32, num_layers=1, dropout=0.0), FeatureConfig(n_mels=20, normalize="utterance", f_max=3800.0), DIGITS)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(40):
        out, _ = model(batch, lengths)
        loss = torch.nn.functional.cross_entropy(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        assert (model(batch, lengths)[0].argmax(1) == y).all(), "the tiny digit model did not fit its clips"
    save_model(model, path, info={"clip_seconds": 1.0})
    return path


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("transcribe")


@pytest.fixture(scope="module")
def cls_model(work) -> Path:
    return random_model(work / "cls.pt")


@pytest.fixture(scope="module")
def ctc_model(work) -> Path:
    return random_model(work / "ctc.pt", head="ctc")


@pytest.fixture(scope="module")
def digit_model(work) -> Path:
    return trained_digit_model(work / "digits.pt")


@pytest.fixture(scope="module")
def clips() -> list[Path]:
    return command_clips("yes", 2) + command_clips("no", 2) + command_clips("up", 2)


# ------------------------------------------------------------------------------------------ formats
def test_tsv_default_order_and_score(capsys, cls_model, clips):
    rc, out, err = speech(capsys, "transcribe", "--model", cls_model, *clips[::-1])
    assert rc == 0, err
    lines = out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(p) for p in clips[::-1]]
    assert all(TSV_LINE.match(line) for line in lines), lines
    labels = {"yes", "no", "up", "down", "_unknown_", "_silence_"}
    assert all(line.split("\t")[1] in labels for line in lines)


def test_directory_input_recursive_and_groups_keep_order(capsys, cls_model, work):
    folder = work / "tree"
    for i, p in enumerate(command_clips("left", 3) + command_clips("right", 4)):
        target = folder / ("a" if i % 2 else "b/c") / p.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, target)
    rc, out, err = speech(capsys, "transcribe", "-m", cls_model, folder)
    assert rc == 0, err
    expected = sorted(str(p) for p in folder.rglob("*.wav"))
    assert [line.split("\t")[0] for line in out.splitlines()] == expected
    # small groups, small batches, 2 decoding threads: same lines, same order
    rc, out2, err = speech(capsys, "transcribe", "-m", cls_model, "--group-size", 3, "--batch-size", 2, "--jobs", 2, folder)
    assert rc == 0 and out2 == out
    # two model processes (groups to whichever is free, records back in input order), a broken file among
    # them reported and skipped: the same lines
    (folder / "b" / "broken.wav").write_bytes(b"RIFF")
    rc, out3, err = speech(capsys, "transcribe", "-m", cls_model, "--workers", 2, "--group-size", 3, folder)
    assert rc == 1 and out3 == out and "broken.wav" in err


def test_json_top_k(capsys, cls_model, clips):
    rc, out, err = speech(capsys, "transcribe", "--model", cls_model, "--format", "json", "--top-k", 3, *clips[:3])
    assert rc == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 3
    for row, path in zip(rows, clips):
        assert set(row) >= {"path", "text", "score", "alternatives", "duration", "timing"}
        assert row["path"] == str(path)
        assert len(row["alternatives"]) == 3
        assert row["alternatives"][0] == {"text": row["text"], "score": row["score"]}
        scores = [a["score"] for a in row["alternatives"]]
        assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1
        assert row["duration"] == pytest.approx(sf.info(str(path)).duration, abs=1e-3)
        assert set(row["timing"]) == {"decode_s", "model_s"} and row["timing"]["model_s"] >= 0


def test_csv_top_k(capsys, cls_model, clips):
    rc, out, err = speech(capsys, "transcribe", "--model", cls_model, "--format", "csv", "--top-k", 2, *clips[:4])
    assert rc == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["path", "text", "score", "text_2", "score_2"]
    assert [r[0] for r in rows[1:]] == [str(p) for p in clips[:4]]
    for r in rows[1:]:
        assert float(r[2]) >= float(r[4]) and r[1] != r[3]
        assert re.fullmatch(r"\d\.\d{4}", r[2])


def test_tsv_top_k_extra_columns(capsys, cls_model, clips):
    rc, out, _ = speech(capsys, "transcribe", "--model", cls_model, "--top-k", 3, clips[0])
    fields = out.strip().split("\t")
    assert rc == 0 and len(fields) == 7


def test_output_file_is_atomic_and_same_as_stdout(capsys, cls_model, clips, work):
    rc, out, _ = speech(capsys, "transcribe", "--model", cls_model, "--format", "json", *clips)
    target = work / "outdir" / "result.jsonl"
    target.parent.mkdir()
    rc2, out2, err2 = speech(capsys, "transcribe", "--model", cls_model, "--format", "json", "--output", target, *clips)
    assert rc == rc2 == 0
    assert out2 == ""
    strip = lambda text: [{k: v for k, v in json.loads(l).items() if k != "timing"} for l in text.splitlines()]
    assert strip(target.read_text()) == strip(out)
    assert os.listdir(target.parent) == ["result.jsonl"]  # no temp file left behind
    rc, _, err = speech(capsys, "transcribe", "--model", cls_model, "--output", work / "missing" / "x.tsv", clips[0])
    assert rc == 2 and "does not exist" in err


def test_threshold_gives_unknown(capsys, work, clips):
    model = random_model(work / "four.pt", labels=["yes", "no", "up", "down"])  # probabilities near 0.25
    rc, out, _ = speech(capsys, "transcribe", "--model", model, *clips)
    assert rc == 0 and all(line.split("\t")[1] in {"yes", "no", "up", "down"} for line in out.splitlines())
    rc, out2, _ = speech(capsys, "transcribe", "--model", model, "--threshold", 0.9, *clips)
    assert rc == 0
    assert [line.split("\t")[1] for line in out2.splitlines()] == ["_unknown_"] * len(clips)
    assert [line.split("\t")[2] for line in out2.splitlines()] == [line.split("\t")[2] for line in out.splitlines()]
    rc, _, err = speech(capsys, "transcribe", "--model", model, "--threshold", 2, clips[0])
    assert rc == 2


# --------------------------------------------------------------------------------------------- CTC
def test_ctc_grammar_scores_every_phrase(capsys, ctc_model, clips, work):
    grammar = work / "grammar.txt"
    phrases = ["yes", "no", "turn on the light", "go"]
    grammar.write_text("# commands\n" + "\n".join(phrases) + "\n\n")
    rc, out, err = speech(capsys, "transcribe", "-m", ctc_model, "--grammar", grammar, "--format", "json", "--top-k", 10, *clips[:3])
    assert rc == 0, err
    for line in out.splitlines():
        row = json.loads(line)
        assert row["text"] in phrases
        assert sorted(a["text"] for a in row["alternatives"]) == sorted(phrases)
        assert sum(a["score"] for a in row["alternatives"]) == pytest.approx(1.0, abs=1e-4)
        assert row["score"] == max(a["score"] for a in row["alternatives"])
    rc, out, _ = speech(capsys, "transcribe", "-m", ctc_model, "--grammar", grammar, clips[0])
    assert rc == 0 and out.split("\t")[1] in phrases


def test_ctc_free_decoding_and_beam(capsys, ctc_model, clips):
    rc, greedy, err = speech(capsys, "transcribe", "-m", ctc_model, *clips[:2])
    assert rc == 0, err
    rc, beam, err = speech(capsys, "transcribe", "-m", ctc_model, "--beam", 4, "--top-k", 2, "--format", "json", *clips[:2])
    assert rc == 0, err
    for g, b in zip(greedy.splitlines(), beam.splitlines()):
        text = g.split("\t")[1]
        assert set(text) <= set(CHARACTERS)
        assert 1 <= len(json.loads(b)["alternatives"]) <= 2


def test_grammar_usage_errors(capsys, ctc_model, cls_model, clips, work):
    rc, _, err = speech(capsys, "transcribe", "-m", ctc_model, "--grammar", work / "nope.txt", clips[0])
    assert rc == 2 and "no such grammar file" in err and "Traceback" not in err
    grammar = work / "g2.txt"
    grammar.write_text("yes\n")
    rc, _, err = speech(capsys, "transcribe", "-m", cls_model, "--grammar", grammar, clips[0])
    assert rc == 2 and "CTC" in err


def _long_file(path: Path, parts: list[torch.Tensor], starts: list[float], seconds: float, subtype="FLOAT") -> None:
    gen = torch.Generator().manual_seed(3)
    wave = noise(int(seconds * 16000), gen)
    for part, start in zip(parts, starts):
        s = int(start * 16000)
        wave[s : s + len(part)] += part
    sf.write(str(path), wave.numpy(), 16000, subtype=subtype)


def test_ctc_long_audio_is_chunked(capsys, ctc_model, work):
    """With --max-window 5, a 12 s file is decoded as chunks 0-5, 5-10, 10-12 s and the texts joined."""
    parts = [load_audio(p, 16000) for p in command_clips("yes", 2) + command_clips("go", 2)]
    long = work / "long_ctc.wav"
    _long_file(long, parts, [0.5, 3.5, 6.5, 9.5], 12.0)
    wave, _ = sf.read(str(long), dtype="float32")
    chunk_files = []
    for i, s in enumerate(range(0, len(wave), 5 * 16000)):
        chunk_files.append(work / f"chunk{i}.wav")
        sf.write(str(chunk_files[-1]), wave[s : s + 5 * 16000], 16000, subtype="FLOAT")
    rc, out, err = speech(capsys, "transcribe", "-m", ctc_model, "--max-window", 5, "--format", "json", long)
    assert rc == 0, err
    row = json.loads(out)
    assert row["duration"] == pytest.approx(12.0)
    rc, parts_out, _ = speech(capsys, "transcribe", "-m", ctc_model, *chunk_files)
    texts = [line.split("\t")[1] for line in parts_out.splitlines()]
    assert len(texts) == 3 and all(texts)  # a random CTC model spells something for every chunk
    assert row["text"] == " ".join(t for t in texts if t)
    rc, _, err = speech(capsys, "transcribe", "-m", ctc_model, "--segments", long)
    assert rc == 2 and "--segments" in err


# ------------------------------------------------------------------------------------ long audio
def test_segments_long_file_times(capsys, digit_model, work):
    truth = [("two", 1.0), ("zero", 4.0), ("three", 7.0), ("one", 10.0)]
    parts = [digit_clip(label, k % 3) for k, (label, _) in enumerate(truth)]
    long = work / "long_digits.wav"
    _long_file(long, parts, [s for _, s in truth], 12.0, subtype="PCM_16")
    rc, out, err = speech(capsys, "transcribe", "-m", digit_model, "--segments", long)
    assert rc == 0, err
    path, text, score = out.rstrip("\n").split("\t")
    found = [re.fullmatch(r"(\S+)@(\d+\.\d\d)-(\d+\.\d\d)", tok) for tok in text.split()]
    assert all(found), text
    assert [m.group(1) for m in found] == [label for label, _ in truth]
    for m, (label, start), part in zip(found, truth, parts):
        s, e = float(m.group(2)), float(m.group(3))
        assert s <= start and start + len(part) / 16000 <= e, (label, s, e)  # the window holds the word
        assert e - s <= 3.0
    assert 0.9 < float(score) <= 1.0

    rc, out, _ = speech(capsys, "transcribe", "-m", digit_model, "--segments", "--format", "json", long)
    row = json.loads(out)
    assert [seg["text"] for seg in row["segments"]] == [label for label, _ in truth]
    assert row["text"] == "two zero three one"
    assert all(0 <= seg["start"] < seg["end"] <= row["duration"] for seg in row["segments"])
    assert set(row["segments"][0]) == {"text", "score", "start", "end", "alternatives"}

    rc, out, _ = speech(capsys, "transcribe", "-m", digit_model, "--segments", "--format", "csv", long)
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["path", "text", "score", "start", "end"]
    assert [r[1] for r in rows[1:]] == [label for label, _ in truth]
    assert all(float(r[3]) < float(r[4]) for r in rows[1:])


def test_segments_short_clip_and_silence(capsys, digit_model, work):
    quiet = work / "quiet.wav"
    sf.write(str(quiet), noise(3 * 16000, torch.Generator().manual_seed(5)).numpy(), 16000)
    clip = work / "two.wav"  # 0.7 s, shorter than the model's 1 s window
    wave = noise(int(0.7 * 16000), torch.Generator().manual_seed(6))
    wave[1600 : 1600 + len(digit_clip("two", 1))] += digit_clip("two", 1)
    sf.write(str(clip), wave.numpy(), 16000)
    rc, out, err = speech(capsys, "transcribe", "-m", digit_model, "--segments", quiet, clip)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split("\t")[1:] == ["", "0.0000"]
    text = lines[1].split("\t")[1]
    label, times = text.split("@")
    start, end = map(float, times.split("-"))
    assert label == "two" and start == 0.0 and end == pytest.approx(0.7, abs=0.01)  # end clipped to the file


# ------------------------------------------------------------------------------ odd audio files
def test_sample_rates_bit_depths_channels_and_flac(capsys, digit_model, work):
    """The same clip as 16 kHz mono (reference), 8 kHz, 44.1 kHz stereo, 24-bit, float and FLAC.

    The digit model's features stop at 3.8 kHz (as an 8 kHz-aware model's should), so the 8 kHz copy
    keeps everything the model looks at."""
    ref = noise(16000, torch.Generator().manual_seed(7))
    clip = digit_clip("three", 0)
    ref[4000 : 4000 + len(clip)] += clip
    folder = work / "variants"
    folder.mkdir()
    sf.write(str(folder / "a_ref16k.wav"), ref.numpy(), 16000, subtype="PCM_16")
    sf.write(str(folder / "b_8k.wav"), resample(ref, 16000, 8000).numpy(), 8000, subtype="PCM_16")
    x44 = resample(ref, 16000, 44100).numpy()
    sf.write(str(folder / "c_44k_stereo.wav"), np.stack([x44, 0.5 * x44], 1), 44100, subtype="PCM_16")
    sf.write(str(folder / "d_24bit.wav"), ref.numpy(), 16000, subtype="PCM_24")
    sf.write(str(folder / "e_float.wav"), ref.numpy(), 16000, subtype="FLOAT")
    sf.write(str(folder / "f.flac"), ref.numpy(), 16000, subtype="PCM_16")
    assert sf.info(str(folder / "c_44k_stereo.wav")).channels == 2
    rc, out, err = speech(capsys, "transcribe", "-m", digit_model, "--format", "json", folder)
    assert rc == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 6 and rows[0]["path"].endswith("a_ref16k.wav")
    reference = rows[0]
    assert reference["text"] == "three"
    for row in rows[1:]:
        assert row["text"] == reference["text"], row["path"]
        assert row["score"] == pytest.approx(reference["score"], abs=0.02), row["path"]
        assert row["duration"] == pytest.approx(reference["duration"], abs=0.01)


def test_broken_files_are_reported_and_skipped(capsys, cls_model, work, clips):
    folder = work / "broken"
    folder.mkdir()
    for p in clips[:2]:
        shutil.copy(p, folder / p.name)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "notes.wav").write_text("this is not audio\n")
    (folder / "truncated.wav").write_bytes(clips[2].read_bytes()[:30])  # cut inside the header
    (folder / "readme.txt").write_text("ignored: not an audio extension")
    rc, out, err = speech(capsys, "transcribe", "-m", cls_model, folder, work / "does-not-exist.wav")
    assert rc == 1
    assert sorted(line.split("\t")[0] for line in out.splitlines()) == sorted(str(folder / p.name) for p in clips[:2])
    err_lines = [line for line in err.splitlines() if line.startswith("speech transcribe: ") and ": " in line[19:]]
    for name in ("empty.wav", "notes.wav", "truncated.wav", "does-not-exist.wav"):
        assert sum(name in line for line in err_lines) == 1, err
    assert "Traceback" not in err
    assert "empty file" in err and "not an audio file" in err and "no such file" in err


def test_empty_folder_counts_as_failure(capsys, cls_model, work, clips):
    (work / "nothing").mkdir()
    rc, out, err = speech(capsys, "transcribe", "-m", cls_model, work / "nothing", clips[0])
    assert rc == 1 and len(out.splitlines()) == 1 and "no audio files" in err


# ------------------------------------------------------------------------------ stdin, manifests
def test_stdin_list(capsys, monkeypatch, cls_model, clips):
    rc, expected, _ = speech(capsys, "transcribe", "-m", cls_model, *clips[:3])
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(str(p) for p in clips[:3]) + "\n\n"))
    rc, out, err = speech(capsys, "transcribe", "-m", cls_model, "-")
    assert rc == 0, err
    assert out == expected


def test_manifest_input_with_offset(capsys, cls_model, work, clips):
    folder = work / "mf"
    folder.mkdir()
    shutil.copy(clips[0], folder / "a.wav")
    long = folder / "long.wav"
    _long_file(long, [load_audio(clips[1], 16000)], [2.0], 4.0, subtype="PCM_16")
    manifest = folder / "test.jsonl"
    rows = [
        {"audio_filepath": "a.wav", "duration": sf.info(str(clips[0])).duration, "label": "yes"},
        {"audio_filepath": str(long), "duration": 1.0, "offset": 2.0, "label": "yes"},
    ]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rc, out, err = speech(capsys, "transcribe", "-m", cls_model, "--format", "json", manifest)
    assert rc == 0, err
    got = [json.loads(line) for line in out.splitlines()]
    assert got[0]["path"] == str(folder / "a.wav") and "offset" not in got[0]
    assert got[1]["path"] == str(long) and got[1]["offset"] == 2.0 and got[1]["duration"] == pytest.approx(1.0)
    # the offset row is the clip written at 2.0 s (plus low noise): same answer as the clip itself
    rc, single, _ = speech(capsys, "transcribe", "-m", cls_model, "--format", "json", clips[1])
    assert json.loads(single)["text"] == got[1]["text"]
    bad = folder / "bad.jsonl"
    bad.write_text('{"audio_filepath": "a.wav"}\n')
    rc, _, err = speech(capsys, "transcribe", "-m", cls_model, bad)
    assert rc == 2 and "bad.jsonl:1" in err


# ------------------------------------------------------------------------------ errors and Ctrl-C
def test_bad_model_is_a_usage_error(capsys, work, clips):
    rc, out, err = speech(capsys, "transcribe", "--model", work / "no-such-model.pt", clips[0])
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1 and "no such model file" in err
    junk = work / "junk.pt"
    junk.write_bytes(b"not a model")
    rc, _, err = speech(capsys, "transcribe", "--model", junk, clips[0])
    assert rc == 2 and "not a speech model file" in err and "Traceback" not in err
    rc, _, err = speech(capsys, "transcribe", "--model", work / "junk.onnx", clips[0])
    assert rc == 2 and len(err.strip().splitlines()) == 1


def test_run_folder_as_model(capsys, cls_model, work, clips):
    run_dir = work / "run"
    run_dir.mkdir()
    shutil.copy(cls_model, run_dir / "model.pt")
    rc, expected, _ = speech(capsys, "transcribe", "-m", cls_model, *clips[:2])
    rc, out, err = speech(capsys, "transcribe", "-m", run_dir, "--threads", 1, *clips[:2])
    assert rc == 0 and out == expected, err


def test_ctrl_c_writes_what_was_done(capsys, monkeypatch, cls_model, work):
    from speech.recognizer import Recognizer

    files = command_clips("down", 5)
    calls = {"n": 0}
    original = Recognizer.recognize

    def interrupted(self, waveforms, options=None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self, waveforms, options)

    monkeypatch.setattr(Recognizer, "recognize", interrupted)
    target = work / "partial.tsv"
    rc, out, err = speech(capsys, "transcribe", "-m", cls_model, "--group-size", 2, "--output", target, *files)
    assert rc == 130 and "interrupted" in err
    lines = target.read_text().splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(p) for p in files[:2]]
    assert [p.name for p in work.iterdir() if p.name.startswith(".partial")] == []


def test_help_documents_exit_codes(capsys):
    rc, out, _ = speech(capsys, "transcribe", "--help")
    assert rc == 0
    for token in ("exit status", " 0 ", " 1 ", " 2 ", "130", "--segments", "--grammar", "--format"):
        assert token in out, token


def test_console_script(cls_model, clips):
    exe = Path(sys.executable).with_name("speech")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "speech.cli"]
    proc = subprocess.run(
        command + ["transcribe", "--model", str(cls_model), str(clips[0]), str(clips[0].with_name("missing.wav"))],
        capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 1, proc.stderr
    assert TSV_LINE.match(proc.stdout.strip())
    assert proc.stderr.splitlines()[0] == f"speech transcribe: {clips[0].with_name('missing.wav')}: no such file"
