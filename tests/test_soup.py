"""recipes/commands/soup.py: the weights of a fine-tune averaged with those of its start, as one loadable model;
models that are not a fine-tune of each other are refused with one line."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "recipes" / "commands" / "soup.py"
SMALL = dict(hidden_size=16, num_layers=1)


def small_model(path: Path, seed: int, labels=("yes", "no", "_unknown_")) -> Path:
    from speech.bench.transcribe import make_random_model

    return make_random_model(path, list(labels), seed=seed, **SMALL)


def soup(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, argv)], capture_output=True, text=True, timeout=120)


def test_soup_is_the_weighted_mean_and_loads(tmp_path):
    from speech.checkpoint import load_model, read_payload

    from speech.checkpoint import atomic_save

    start, tuned = small_model(tmp_path / "a.pt", 0), small_model(tmp_path / "b.pt", 1)
    payload = read_payload(tuned)  # as speech train leaves a fine-tune: its own measurements in its info
    measured = {"best_epoch": 7, "train_loss": 0.18, "test_accuracy": 0.9379, "test_count": 789}
    atomic_save({**payload, "info": {**payload["info"], **measured, "recipe": "commands"}}, tuned)
    out = tmp_path / "soup.pt"
    proc = soup("--start", start, "--tuned", tuned, "--alpha", 0.25, "--out", out)
    assert proc.returncode == 0, proc.stderr
    a, b, s = (read_payload(p)["state_dict"] for p in (start, tuned, out))
    for key in s:
        if s[key].is_floating_point():
            assert torch.allclose(s[key], 0.25 * b[key] + 0.75 * a[key], atol=1e-6), key
    info = read_payload(out)["info"]
    assert info["soup"]["alpha"] == 0.25 and info["soup"]["tuned"] == str(tuned)
    # the fine-tune's own measurements are not the average's: kept apart
    assert not set(measured) & set(info) and info["recipe"] == "commands"
    assert info["soup"]["tuned_measurements"] == measured
    model = load_model(out)  # weights_only load of a self-describing file
    assert model.labels == ["yes", "no", "_unknown_"]


def test_models_that_differ_are_refused(tmp_path):
    start = small_model(tmp_path / "a.pt", 0)
    other = small_model(tmp_path / "c.pt", 0, labels=("up", "down", "_unknown_"))
    proc = soup("--start", start, "--tuned", other, "--out", tmp_path / "x.pt")
    assert proc.returncode != 0 and "differ in labels" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.pt").exists()


def test_a_fine_tune_that_added_filler_classes_averages_with_its_start(tmp_path):
    """``model.filler_classes`` added by the fine-tune: the start's output layer is expanded as
    ``trainer.init_from`` expands it (the same posteriors) before the average."""
    from speech.checkpoint import load_model, read_payload

    start = small_model(tmp_path / "a.pt", 0)
    tuned = make_filler_model(tmp_path / "b.pt")
    out = tmp_path / "soup.pt"
    proc = soup("--start", start, "--tuned", tuned, "--alpha", 1.0, "--out", out)
    assert proc.returncode == 0, proc.stderr
    for key, value in read_payload(tuned)["state_dict"].items():  # alpha 1: the fine-tune's weights
        assert torch.allclose(read_payload(out)["state_dict"][key], value), key
    proc = soup("--start", start, "--tuned", tuned, "--alpha", 0.0, "--out", out)
    assert proc.returncode == 0, proc.stderr
    wave, lengths = torch.randn(2, 16000) * 0.1, torch.tensor([16000, 9000])
    a, s = load_model(start), load_model(out)  # alpha 0: the start's posteriors, through the expanded layer
    assert s.config.filler_classes == ["four", "nine"] and s.head.output.out_features == 5
    with torch.no_grad():
        torch.testing.assert_close(torch.softmax(s(wave, lengths)[0], -1), torch.softmax(a(wave, lengths)[0], -1))


def make_filler_model(path: Path) -> Path:
    from speech.bench.transcribe import make_random_model

    return make_random_model(path, ["yes", "no", "_unknown_"], seed=1, filler_classes=["four", "nine"], **SMALL)


def test_a_start_written_before_a_config_field_existed_averages_with_its_fine_tune(tmp_path):
    """The bundled model predates ``model.filler_classes``: its file has no such key, a fine-tune of it
    writes the default (``[]``); the two are the same model and average."""
    from speech.checkpoint import atomic_save, read_payload

    start, tuned = small_model(tmp_path / "a.pt", 0), small_model(tmp_path / "b.pt", 1)
    old = read_payload(start)
    del old["model_config"]["filler_classes"]
    atomic_save(old, start)
    proc = soup("--start", start, "--tuned", tuned, "--alpha", 0.5, "--out", tmp_path / "soup.pt")
    assert proc.returncode == 0, proc.stderr
    assert read_payload(tmp_path / "soup.pt")["model_config"]["filler_classes"] == []
