"""``speech evaluate``: report files, label mapping, CTC metrics, and agreement with ``speech transcribe``."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import soundfile as sf
import torch

from speech.checkpoint import save_model
from speech.data.manifest import read_manifest
from speech.features import FeatureConfig
from speech.metrics import transcript_metrics
from speech.models import ModelConfig, SpeechModel
from speech.text import CHARACTERS, normalize_text
from conftest import run_speech, shared_data_dir

torch.set_num_threads(1)

DATA = shared_data_dir()
COMMANDS = DATA / "speech_commands_v2_test_dev"
pytestmark = pytest.mark.skipif(not COMMANDS.is_dir(), reason=f"real audio data not found at {DATA} (set SPEECH_DATA_DIR)")
LABELS = ["yes", "no", "up", "down", "_unknown_", "_silence_"]


speech = run_speech  # speech(capsys, *argv) -> (exit status, stdout, stderr)


def random_model(path: Path, head: str = "classification", labels=None, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    labels = labels or (CHARACTERS if head == "ctc" else LABELS)
    model = SpeechModel(ModelConfig(head=head, hidden_size=16, num_layers=1), FeatureConfig(n_mels=20, normalize="utterance"), labels)
    if head != "ctc":  # let the answer depend on the audio more than on the bias, so clips get different labels
        with torch.no_grad():
            model.head.output.weight.mul_(20.0)
            model.head.output.bias.zero_()
    save_model(model, path, info={"clip_seconds": 1.0})
    return path


def write_manifest(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def clip_rows(words: dict[str, int], text: bool = False) -> list[dict]:
    rows = []
    for word, n in words.items():
        for p in sorted((COMMANDS / word).glob("*.wav"))[:n]:
            row = {"audio_filepath": str(p), "duration": sf.info(str(p)).duration, "label": word}
            if text:
                row["text"] = word.replace("_", " ").upper() + "!"  # normalized to the word
            rows.append(row)
    return rows


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("evaluate")


@pytest.fixture(scope="module")
def manifest(work) -> Path:
    broken = work / "broken.wav"
    broken.write_text("not audio")
    rows = clip_rows({"yes": 4, "no": 4, "up": 3, "go": 3, "_silence_": 3})
    rows.insert(5, {"audio_filepath": str(broken), "duration": 1.0, "label": "yes"})
    return write_manifest(work / "test.jsonl", rows)


def test_classification_reports_and_agreement_with_transcribe(capsys, work, manifest):
    model = random_model(work / "cls.pt")
    out_dir = work / "report"
    rc, out, err = speech(capsys, "evaluate", "--model", model, "--manifest", manifest, "--out", out_dir, "--batch-size", 4)
    assert rc == 1  # one unreadable file
    assert "broken.wav" in err and "Traceback" not in err
    assert "accuracy" in out and "precision" in out and "go 3" in out

    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert {"accuracy", "count", "per_class", "model", "skipped", "out_of_set"} <= set(metrics)
    assert metrics["count"] == 17 and metrics["skipped"] == 1
    assert metrics["out_of_set"] == 3 and metrics["out_of_set_labels"] == {"go": 3} and metrics["out_of_set_as"] == "_unknown_"
    assert metrics["model"] == str(model)
    assert set(metrics["per_class"]) == set(LABELS)
    assert metrics["per_class"]["_unknown_"]["support"] == 3 and metrics["per_class"]["yes"]["support"] == 4

    rows = list(csv.reader((out_dir / "confusion.csv").open()))
    assert rows[0] == ["true\\predicted"] + LABELS
    assert [r[0] for r in rows[1:]] == LABELS
    assert sum(int(v) for r in rows[1:] for v in r[1:]) == 17
    assert sum(int(r[1 + i]) for i, r in enumerate(rows[1:])) == round(metrics["accuracy"] * 17)
    png = (out_dir / "confusion.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    predictions = [json.loads(line) for line in (out_dir / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 17 and set(predictions[0]) >= {"path", "reference", "prediction", "score"}
    assert not [p for p in out_dir.iterdir() if p.name.startswith(".")]  # no temp files left

    # the same clips through `speech transcribe`: accuracy = fraction of lines matching the labels
    rc, lines, _ = speech(capsys, "transcribe", "--model", model, "--format", "json", manifest)
    assert rc == 1
    answers = {json.loads(line)["path"]: json.loads(line)["text"] for line in lines.splitlines()}
    expected = {u.audio_filepath: (u.label if u.label in LABELS else "_unknown_") for u in read_manifest(manifest)}
    assert len(answers) == 17
    matches = sum(answers[path] == expected[path] for path in answers)
    assert metrics["accuracy"] == pytest.approx(matches / len(answers))
    assert [p["prediction"] for p in predictions] == [answers[p["path"]] for p in predictions]
    assert len({p["prediction"] for p in predictions}) > 1, "the random model answers one class for every clip"


def test_labels_outside_the_model_are_left_out_without_unknown_class(work, manifest):
    from speech.evaluate import evaluate_manifest
    from speech.recognizer import DecodeOptions, Recognizer

    recognizer = Recognizer(random_model(work / "four.pt", labels=["yes", "no", "up", "_silence_"]))
    errors = []
    result = evaluate_manifest(recognizer, read_manifest(manifest), DecodeOptions(top_k=1), on_error=errors.append)
    assert result["out_of_set"] == 3 and result["out_of_set_as"] is None
    assert result["count"] == 14 and result["skipped"] == 1 and len(errors) == 1 and "broken.wav" in errors[0]
    assert set(result["per_class"]) == {"yes", "no", "up", "_silence_"}
    assert {p["reference"] for p in result["predictions"]} == {"yes", "no", "up", "_silence_"}
    assert 0.0 <= result["accuracy"] <= 1.0


def test_ctc_metrics_and_grammar(capsys, work):
    model = random_model(work / "ctc.pt", head="ctc")
    manifest = write_manifest(work / "ctc.jsonl", clip_rows({"yes": 3, "no": 3, "up": 2}, text=True))
    out_dir = work / "ctc-report"
    rc, out, err = speech(capsys, "evaluate", "--model", model, "--manifest", manifest, "--out", out_dir)
    assert rc == 0, err
    assert "CER" in out and "WER" in out
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert {"cer", "wer", "sequence_accuracy", "count", "model", "skipped"} <= set(metrics)
    assert metrics["count"] == 8 and metrics["skipped"] == 0
    assert not (out_dir / "confusion.csv").exists() and (out_dir / "predictions.jsonl").is_file()
    predictions = [json.loads(line) for line in (out_dir / "predictions.jsonl").read_text().splitlines()]
    assert [p["reference"] for p in predictions] == [normalize_text(u.text) for u in read_manifest(manifest)]

    rc, lines, _ = speech(capsys, "transcribe", "--model", model, manifest)
    hyps = [line.split("\t")[1] for line in lines.splitlines()]
    same = transcript_metrics([p["reference"] for p in predictions], hyps)
    for key in ("cer", "wer", "sequence_accuracy"):
        assert metrics[key] == pytest.approx(same[key])

    grammar = work / "words.txt"
    grammar.write_text("yes\nno\nup\ndown\n")
    rc, out, err = speech(capsys, "evaluate", "--model", model, "--manifest", manifest, "--grammar", grammar, "--out", out_dir)
    assert rc == 0, err
    predictions = [json.loads(line) for line in (out_dir / "predictions.jsonl").read_text().splitlines()]
    assert {p["prediction"] for p in predictions} <= {"yes", "no", "up", "down"}
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["sequence_accuracy"] == pytest.approx(sum(p["correct"] for p in predictions) / 8)
    assert metrics["decode"]["grammar"] == ["yes", "no", "up", "down"]


def test_usage_errors(capsys, work, manifest):
    model = random_model(work / "u.pt")
    rc, _, err = speech(capsys, "evaluate", "--model", model, "--manifest", work / "missing.jsonl")
    assert rc == 2 and "no such manifest" in err
    rc, _, err = speech(capsys, "evaluate", "--model", work / "missing.pt", "--manifest", manifest)
    assert rc == 2 and "no such model file" in err
    rc, _, err = speech(capsys, "evaluate", "--model", model, "--manifest", manifest, "--grammar", work / "g.txt")
    assert rc == 2 and "CTC" in err
    rc, _, err = speech(capsys, "evaluate", "--model", model)
    assert rc == 2  # --manifest is required
    rc, out, _ = speech(capsys, "evaluate", "--help")
    assert rc == 0 and "exit status" in out
