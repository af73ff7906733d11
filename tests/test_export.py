"""``speech export``: ONNX and TorchScript files match the PyTorch model on real audio, carry their
metadata, and work as ``speech transcribe --model``.

Tolerance: max abs difference 1e-4 on logits (classification) and log-probabilities (CTC) over a padded
batch of real clips of different lengths (the conv1d STFT matches torch.stft to ~1e-5 in features).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from speech.audio import load_audio
from speech.checkpoint import ModelFileError, load_model, save_model
from speech.cli import main
from speech.features import FeatureConfig
from speech.models import ModelConfig, SpeechModel
from speech.text import CHARACTERS
from conftest import run_speech, shared_data_dir

onnx = pytest.importorskip("onnx", reason="ONNX export needs the 'export' extra (onnx, onnxruntime)")
pytest.importorskip("onnxruntime", reason="ONNX export needs the 'export' extra (onnx, onnxruntime)")

torch.set_num_threads(1)

DATA = shared_data_dir()
COMMANDS = DATA / "speech_commands_v2_test_dev"
FSDD = DATA / "fsdd" / "recordings"
pytestmark = pytest.mark.skipif(
    not (COMMANDS.is_dir() and FSDD.is_dir()), reason=f"real audio data not found at {DATA} (set SPEECH_DATA_DIR)"
)
ATOL = 1e-4


speech = run_speech  # speech(capsys, *argv) -> (exit status, stdout, stderr)


def real_files() -> list[Path]:
    """Clips of different lengths: 1 s Speech Commands words and 0.3-0.8 s FSDD digits (8 kHz)."""
    return (sorted((COMMANDS / "left").glob("*.wav"))[:2] + sorted((COMMANDS / "_silence_").glob("*.wav"))[:1]
            + sorted(FSDD.glob("*_nicolas_1*.wav"))[:3])


def padded_batch(files: list[Path], rate: int) -> tuple[torch.Tensor, torch.Tensor]:
    waves = [load_audio(p, rate) for p in files]
    lengths = torch.tensor([len(w) for w in waves])
    batch = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        batch[i, : len(w)] = w
    return batch, lengths


VARIANTS = {
    "classification": (dict(head="classification", hidden_size=16, num_layers=2), dict(n_mels=20, normalize="utterance")),
    "ctc": (dict(head="ctc", hidden_size=16, num_layers=2), dict(n_mels=20, normalize="utterance")),
    # MFCC with deltas, global statistics, conv subsampling, mean pooling
    "mfcc-deltas": (
        dict(head="classification", hidden_size=16, num_layers=1, subsampling="conv", pooling="mean"),
        dict(kind="mfcc", n_mels=40, n_mfcc=13, deltas=2, normalize="global"),
    ),
    # 2-D convolutions over time and frequency
    "conv2d": (dict(head="classification", hidden_size=16, num_layers=1, subsampling="conv2d", conv_channels=4),
               dict(n_mels=20, normalize="utterance")),
    # filler classes folded into _unknown_ inside the exported graph
    "fillers": (dict(head="classification", hidden_size=16, num_layers=1, filler_classes=["up", "down", "yes"]),
                dict(n_mels=20, normalize="utterance")),
}


@pytest.fixture(scope="module", params=list(VARIANTS))
def exported(request, tmp_path_factory):
    """A random model of each kind, its .pt file, and its ONNX and TorchScript exports (via the CLI)."""
    model_kw, feature_kw = VARIANTS[request.param]
    head = model_kw["head"]
    work = tmp_path_factory.mktemp(f"export-{request.param}")
    torch.manual_seed(0)
    labels = CHARACTERS if head == "ctc" else ["left", "right", "_unknown_", "_silence_"]
    model = SpeechModel(ModelConfig(**model_kw), FeatureConfig(**feature_kw), labels)
    if feature_kw.get("normalize") == "global":
        model.front_end.set_statistics(torch.linspace(-60, -20, model.feature_config.dim), torch.linspace(5, 15, model.feature_config.dim))
    pt = work / "model.pt"
    save_model(model, pt, info={"clip_seconds": 1.0, "recipe": "test"})
    main(["export", "--model", str(pt), "--format", "onnx", "--out", str(work / "model.onnx")])
    main(["export", "--model", str(pt), "--out", str(work / "model.ts")])  # format from the suffix
    return {"head": head, "pt": pt, "onnx": work / "model.onnx", "ts": work / "model.ts", "work": work}


def test_files_written(exported):
    assert exported["onnx"].is_file() and exported["ts"].is_file()
    assert sorted(p.name for p in exported["work"].iterdir()) == ["model.onnx", "model.pt", "model.ts"]  # no temp files


@pytest.mark.parametrize("kind", ["onnx", "ts"])
def test_exported_matches_pytorch_on_real_audio(exported, kind):
    from speech.backends import OnnxBackend, TorchScriptBackend

    model = load_model(exported["pt"])
    backend = OnnxBackend(exported["onnx"]) if kind == "onnx" else TorchScriptBackend(exported["ts"])
    files = real_files()
    for subset in (files, files[3:5], files[:1]):  # batch sizes 6, 2, 1; different padded lengths
        waveform, lengths = padded_batch(subset, model.sample_rate)
        with torch.inference_mode():
            ref, ref_lengths = model(waveform, lengths)  # torch.stft front end
        out, out_lengths = backend(waveform, lengths)
        assert out.shape == ref.shape and out.dtype == torch.float32
        assert torch.equal(out_lengths.long(), ref_lengths.long())
        if exported["head"] == "ctc":  # compare valid frames only
            for row, n in enumerate(ref_lengths.tolist()):
                torch.testing.assert_close(out[row, :n], ref[row, :n], atol=ATOL, rtol=0)
        else:
            assert out.shape[-1] == len(model.labels)  # fillers, if any, folded into _unknown_
            torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)


def test_metadata_inside_files(exported):
    from speech.backends import OnnxBackend, TorchScriptBackend

    model = load_model(exported["pt"])
    proto = onnx.load(str(exported["onnx"]))
    meta = json.loads({p.key: p.value for p in proto.metadata_props}["speech"])
    for m in (meta, OnnxBackend(exported["onnx"]).metadata, TorchScriptBackend(exported["ts"]).metadata):
        assert m["labels"] == model.labels
        assert m["head"] == exported["head"]
        assert m["sample_rate"] == 16000
        assert m["vocabulary"] == "char"
        assert m["info"] == {"clip_seconds": 1.0, "recipe": "test"}
        assert m["feature_config"] == dataclasses.asdict(model.feature_config)
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in proto.graph.input}
    outputs = [o.name for o in proto.graph.output]
    assert inputs == {"waveform": ["batch", "samples"], "lengths": ["batch"]}
    assert outputs == ["output", "output_lengths"]
    elem = {i.name: i.type.tensor_type.elem_type for i in proto.graph.input}
    assert elem == {"waveform": onnx.TensorProto.FLOAT, "lengths": onnx.TensorProto.INT64}


def test_transcribe_exported_gives_same_text(capsys, exported):
    files = real_files()
    rc, reference, err = speech(capsys, "transcribe", "--model", exported["pt"], "--top-k", 2, *files)
    assert rc == 0, err
    for kind in ("onnx", "ts"):
        rc, out, err = speech(capsys, "transcribe", "--model", exported[kind], "--top-k", 2, *files)
        assert rc == 0, err
        for a, b in zip(reference.splitlines(), out.splitlines()):
            a, b = a.split("\t"), b.split("\t")
            assert a[:2] == b[:2]
            assert float(a[2]) == pytest.approx(float(b[2]), abs=2e-4)


def test_export_usage_errors(capsys, exported, tmp_path):
    rc, _, err = speech(capsys, "export", "--model", tmp_path / "missing.pt", "--format", "onnx", "--out", tmp_path / "x.onnx")
    assert rc == 2 and "no such model file" in err
    rc, _, err = speech(capsys, "export", "--model", exported["pt"], "--out", tmp_path / "x.bin")
    assert rc == 2 and "--format" in err
    rc, _, err = speech(capsys, "export", "--model", exported["onnx"], "--out", tmp_path / "y.onnx")
    assert rc == 2 and "already exported" in err
    rc, _, _ = speech(capsys, "export", "--model", exported["pt"], "--format", "pickle", "--out", tmp_path / "x.onnx")
    assert rc == 2
    assert list(tmp_path.iterdir()) == []


def test_backends_reject_other_files(tmp_path, exported):
    from speech.backends import OnnxBackend, TorchScriptBackend

    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not onnx")
    with pytest.raises(ModelFileError, match="not an ONNX model"):
        OnnxBackend(junk)
    with pytest.raises(ModelFileError, match="no such model file"):
        OnnxBackend(tmp_path / "missing.onnx")
    bare = tmp_path / "bare.onnx"  # a valid ONNX file without our metadata
    proto = onnx.load(str(exported["onnx"]))
    del proto.metadata_props[:]
    onnx.save(proto, str(bare))
    with pytest.raises(ModelFileError, match="metadata"):
        OnnxBackend(bare)
    with pytest.raises(ModelFileError, match="not a TorchScript model"):
        TorchScriptBackend(junk)


def test_recognizer_onnx_engine_matches_pytorch(exported):
    """``Recognizer(engine="onnx")`` exports the model in memory and runs it in onnxruntime (one thread):
    the same outputs as the PyTorch engine on real clips."""
    from speech.backends import OnnxBackend
    from speech.recognizer import Recognizer

    torch_rec = Recognizer(exported["pt"])
    onnx_rec = Recognizer(exported["pt"], engine="onnx", threads=1)
    assert isinstance(onnx_rec.backend, OnnxBackend)
    assert onnx_rec.backend.session.get_session_options().intra_op_num_threads == 1
    waves = [load_audio(f, torch_rec.sample_rate) for f in real_files()]
    for a, b in zip(torch_rec.forward(waves), onnx_rec.forward(waves)):
        torch.testing.assert_close(b, a, atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match="engine"):
        Recognizer(exported["pt"], engine="tflite")


def test_engine_auto_falls_back_to_pytorch_when_the_export_fails(exported, monkeypatch, capsys):
    """``auto`` only speeds things up: a model that will not export still runs, with a one-line note;
    ``onnx`` asked for explicitly is a one-line usage error instead."""
    import speech.backends
    import speech.export
    from speech.backends import TorchBackend
    from speech.transcribe import UsageError, load_recognizer

    def refuse(model, threads=None):
        raise speech.export.ExportError("ONNX export failed: no")

    monkeypatch.setattr(speech.backends, "onnx_backend", refuse)
    monkeypatch.setattr("speech.api.resolve_engine", lambda engine: "onnx" if engine == "auto" else engine)
    rec = load_recognizer(str(exported["pt"]), "cpu", engine="auto")
    assert isinstance(rec.backend, TorchBackend)
    note = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(note) == 1 and "running it in PyTorch" in note[0] and "ONNX export failed" in note[0]
    with pytest.raises(UsageError, match="ONNX export failed"):
        load_recognizer(str(exported["pt"]), "cpu", engine="onnx")
