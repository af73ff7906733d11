"""``speech.checkpoint``: self-describing model files that round-trip exactly, load with
``weights_only=True``, and fail with one clear line for anything else."""
from __future__ import annotations

import pickle
from fractions import Fraction

import pytest
import torch

from speech import checkpoint
from speech.checkpoint import (
    FORMAT, VERSION, ModelFileError, load_model, model_payload, read_payload, resolve_model_path, save_model,
)
from speech.features import FeatureConfig
from speech.models import ModelConfig, SpeechModel
from speech.text import CHARACTERS

torch.set_num_threads(1)


class NotAModel:
    """A plain Python object: pickling it needs code, which ``weights_only`` refuses to run."""

    def __init__(self):
        self.value = 3


def make_model(head: str = "classification", seed: int = 0) -> SpeechModel:
    torch.manual_seed(seed)
    labels = ["yes", "no", "up"] if head == "classification" else CHARACTERS
    config = ModelConfig(head=head, hidden_size=16, num_layers=1, subsampling="conv")
    model = SpeechModel(config, FeatureConfig(kind="mfcc", deltas=1), labels)
    with torch.no_grad():
        model.front_end.set_statistics(torch.randn(26), torch.rand(26) + 0.5)
    return model.eval()


def one_line(err: pytest.ExceptionInfo, path) -> str:
    message = str(err.value)
    assert "\n" not in message, message
    assert message.startswith(f"{path}: "), message
    return message


@pytest.mark.parametrize("head", ["classification", "ctc"])
def test_round_trip_gives_identical_outputs(tmp_path, head):
    model = make_model(head)
    path = tmp_path / "models" / "model.pt"
    save_model(model, path, info={"recipe": "test", "accuracy": 0.5})
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temp file left
    loaded = load_model(path)
    assert not loaded.training
    assert loaded.labels == model.labels and loaded.config == model.config
    assert loaded.feature_config == model.feature_config
    assert loaded.info == {"recipe": "test", "accuracy": 0.5}
    assert torch.equal(loaded.front_end.mean, model.front_end.mean)  # normalization statistics travel
    assert torch.equal(loaded.front_end.std, model.front_end.std)
    g = torch.Generator().manual_seed(1)
    wave = torch.randn(2, 8000, generator=g) * 0.1
    lengths = torch.tensor([8000, 5000])
    with torch.no_grad():
        a, na = model(wave, lengths)
        b, nb = loaded(wave, lengths)
    assert torch.equal(a, b) and torch.equal(na, nb)
    # by directory, too
    assert torch.equal(load_model(path.parent)(wave, lengths)[0], a)


def test_file_is_plain_data(tmp_path):
    path = tmp_path / "model.pt"
    save_model(make_model(), path)
    payload = torch.load(path, map_location="cpu", weights_only=True)
    assert payload["format"] == FORMAT and payload["version"] == VERSION
    assert payload["sample_rate"] == 16000 and payload["labels"] == ["yes", "no", "up"]
    assert payload["model_config"]["head"] == "classification" and payload["feature_config"]["kind"] == "mfcc"
    assert all(isinstance(v, torch.Tensor) for v in payload["state_dict"].values())
    assert "front_end.mean" in payload["state_dict"] and "front_end.window" not in payload["state_dict"]
    assert read_payload(path).keys() == model_payload(make_model()).keys()


def test_wrong_format(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"format": "something-else", "version": 1, "state_dict": {}}, path)
    with pytest.raises(ModelFileError) as err:
        load_model(path)
    assert "not a speech model file (no 'speech-model' header)" in one_line(err, path)
    torch.save([1, 2, 3], path)
    with pytest.raises(ModelFileError) as err:
        load_model(path)
    assert "no 'speech-model' header" in one_line(err, path)


def test_wrong_version(tmp_path):
    path = tmp_path / "future.pt"
    payload = model_payload(make_model())
    payload["version"] = VERSION + 1
    torch.save(payload, path)
    with pytest.raises(ModelFileError) as err:
        load_model(path)
    assert f"model format version {VERSION + 1} is not supported" in one_line(err, path)


def test_pickled_python_object_is_refused(tmp_path):
    """weights_only refuses to unpickle a class instance: no code from a model file ever runs."""
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "version": VERSION, "obj": NotAModel()}, path)
    with pytest.raises(ModelFileError) as err:
        load_model(path)
    message = one_line(err, path)
    assert message == f"{path}: not a speech model file (it holds Python objects, which a weights-only load refuses to unpickle)"
    assert message.isprintable()  # torch's own message carries ANSI bold codes: not passed on
    path2 = tmp_path / "frac.pt"
    with open(path2, "wb") as f:
        pickle.dump(Fraction(1, 3), f, protocol=2)  # a plain pickle (not a torch zip) of a Python object
    with pytest.raises(ModelFileError) as err:
        load_model(path2)
    assert "weights-only load refuses" in one_line(err, path2)


def test_text_file_and_empty_file(tmp_path):
    path = tmp_path / "model.pt"
    path.write_text("this is not a model\nsecond line\n")
    with pytest.raises(ModelFileError) as err:
        load_model(path)
    assert one_line(err, path) == f"{path}: not a speech model file (not a PyTorch file)"
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(ModelFileError) as err:
        load_model(empty)
    assert one_line(err, empty) == f"{empty}: not a speech model file (empty file)"


def test_truncated_model_file(tmp_path):
    path = tmp_path / "model.pt"
    save_model(make_model(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError) as err:
        load_model(path)
    assert "not a speech model file" in one_line(err, path) and str(err.value).isprintable()


def test_mismatched_weights(tmp_path):
    path = tmp_path / "bad.pt"
    payload = model_payload(make_model())
    payload["model_config"]["hidden_size"] = 32  # the weights are for 16
    torch.save(payload, path)
    with pytest.raises(ModelFileError) as err:
        load_model(path)
    assert "does not match this version of speech" in one_line(err, path)
    payload = model_payload(make_model())
    payload["model_config"]["unknown_option"] = 1
    torch.save(payload, path)
    with pytest.raises(ModelFileError) as err:
        load_model(path)
    assert "does not match" in one_line(err, path)


def test_missing_paths(tmp_path):
    with pytest.raises(ModelFileError) as err:
        load_model(tmp_path / "nope.pt")
    message = one_line(err, tmp_path / "nope.pt")
    assert "no such model file (bundled models: commands, commands-ctc)" in message
    with pytest.raises(ModelFileError) as err:
        load_model(tmp_path)
    assert "is a directory without model.pt" in one_line(err, tmp_path)


def test_bundled_names(tmp_path, monkeypatch):
    """A bundled name resolves inside the package's pretrained folder; when that file is missing the
    error names the model and the missing path."""
    monkeypatch.setattr(checkpoint, "PRETRAINED_DIR", tmp_path)
    with pytest.raises(ModelFileError) as err:
        load_model("commands")
    message = str(err.value)
    assert message == f"commands: the bundled model is not installed ({tmp_path / 'commands.pt'} is missing)"
    save_model(make_model(), tmp_path / "commands-ctc.pt")
    assert resolve_model_path("commands-ctc") == tmp_path / "commands-ctc.pt"
    assert load_model("commands-ctc").labels == ["yes", "no", "up"]
