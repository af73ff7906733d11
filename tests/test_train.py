"""Training: Hydra composition and typed configs, recipe smoke runs on tiny real slices, resume after a
kill, and two-process DDP on CPU. Real audio, real training steps, tiny models."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from speech.checkpoint import load_model, read_payload
from speech.cli import main as cli_main

REPO = Path(__file__).resolve().parents[1]
TINY = ["model.hidden_size=24", "model.num_layers=1", "features.n_mels=20", "trainer.progress=false",
        "trainer.tensorboard=false", "trainer.stats_batches=2"]


def run_train(*overrides: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """``speech train`` as a real subprocess, from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "speech.train", *overrides], cwd=REPO, capture_output=True, text=True,
        timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )


@pytest.fixture(scope="module")
def fsdd_prepared(shared_dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fsdd")
    assert cli_main(["prepare", "fsdd", "--root", str(shared_dataset("fsdd")), "--split", "loso", "--out", str(out)]) == 0
    return out


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_misspelt_key_fails_with_hydras_message(tmp_path):
    proc = run_train("recipe=fsdd_digits", "model.hiden_size=64", f"hydra.run.dir={tmp_path}")
    assert proc.returncode != 0
    assert "hiden_size" in proc.stderr and "ModelConfig" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_recipe_is_a_one_line_error():
    proc = run_train("recipe=no_such_recipe")
    assert proc.returncode != 0
    assert "unknown recipe 'no_such_recipe'" in proc.stderr and "fsdd_digits" in proc.stderr


def test_an_empty_noise_or_room_folder_is_a_one_line_error(fsdd_prepared, tmp_path):
    (tmp_path / "empty").mkdir()
    for key, what in (("augment.rir_dir", "no room impulse responses found"), ("augment.noise_dir", "no noise recordings found")):
        proc = run_train("recipe=fsdd_digits", f"data.root={fsdd_prepared}", "data.max_items=16", "augment.reverb_prob=0.5",
                         "augment.noise_prob=0.5", f"{key}={tmp_path / 'empty'}", f"hydra.run.dir={tmp_path / 'run'}", *TINY)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr
        assert proc.stderr.strip().splitlines()[-1] == f"speech train: {tmp_path / 'empty'}: {what} ({key})"


def test_fsdd_digits_smoke_run_writes_a_self_describing_model(fsdd_prepared, tmp_path):
    """With reverberation from a folder of room impulse responses (two rooms, written here)."""
    run, rooms = tmp_path / "run", tmp_path / "rooms"
    rooms.mkdir()
    for i, decay in enumerate((0.05, 0.2)):
        t = np.arange(4000) / 16000
        sf.write(str(rooms / f"room{i}.wav"), (np.random.default_rng(i).standard_normal(4000) * np.exp(-t / decay)).astype(np.float32),
                 16000, subtype="FLOAT")
    proc = run_train("recipe=fsdd_digits", f"data.root={fsdd_prepared}", "data.fold=fold_theo", "data.max_items=96",
                     "trainer.max_epochs=2", f"hydra.run.dir={run}", *TINY, "trainer.tensorboard=true",
                     "augment.reverb_prob=0.5", f"augment.rir_dir={rooms}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"reverberation: 2 room impulse responses from {rooms}" in proc.stderr
    metrics = read_metrics(run)
    assert [m["epoch"] for m in metrics if "epoch" in m] == [0, 1]
    assert all("valid_accuracy" in m for m in metrics if "epoch" in m)
    assert metrics[-1]["final"] and 0.0 <= metrics[-1]["test_accuracy"] <= 1.0
    assert (run / ".hydra" / "config.yaml").is_file() and list((run / "tb").iterdir())
    payload = torch.load(run / "model.pt", map_location="cpu", weights_only=True)
    assert payload["labels"] == sorted(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    assert payload["sample_rate"] == 16000 and payload["feature_config"]["f_max"] == 4000.0
    assert payload["info"]["config"]["data"]["fold"] == "fold_theo"
    model = load_model(run / "model.pt")
    assert not torch.equal(model.front_end.std, torch.ones_like(model.front_end.std))  # global statistics saved


def test_digit_strings_ctc_smoke_run(fsdd_prepared, tmp_path):
    """With tempo perturbation on: the CTC loss gets the stretched clips' frame counts."""
    run = tmp_path / "run"
    proc = run_train("recipe=digit_strings_ctc", f"data.root={fsdd_prepared}", "data.fold=fold_lucas",
                     "data.train_size=24", "data.eval_size=8", "data.max_items=200", "trainer.max_epochs=1",
                     "augment.tempo_prob=1.0", "augment.tempo_min=0.7", "augment.tempo_max=1.4",
                     f"hydra.run.dir={run}", *TINY)
    assert proc.returncode == 0, proc.stderr[-2000:]
    final = read_metrics(run)[-1]
    assert {"test_cer", "test_wer", "test_sequence_accuracy"} <= set(final)
    payload = read_payload(run / "model.pt")
    assert payload["model_config"]["head"] == "ctc" and payload["model_config"]["vocabulary"] == "word"
    assert payload["labels"] == sorted(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])


def test_init_from_takes_over_the_encoder_and_refuses_other_features(fsdd_prepared, tmp_path):
    """digit_strings_ctc starts from an fsdd_digits classifier (as its run.sh does); a classifier with
    another front end is refused in one line instead of half-loaded."""
    classifier = tmp_path / "classifier"
    proc = run_train("recipe=fsdd_digits", f"data.root={fsdd_prepared}", "data.fold=fold_lucas", "data.max_items=64",
                     "trainer.max_epochs=1", f"hydra.run.dir={classifier}", *TINY, "model.num_layers=2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    ctc = ["recipe=digit_strings_ctc", f"data.root={fsdd_prepared}", "data.fold=fold_lucas", "data.train_size=16",
           "data.eval_size=4", "data.max_items=100", "trainer.max_epochs=1", "trainer.max_steps=1", *TINY,
           "model.num_layers=2"]
    common = [*ctc, f"trainer.init_from={classifier / 'model.pt'}"]
    run = tmp_path / "ctc"
    proc = run_train(*common, f"hydra.run.dir={run}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(x for x in proc.stderr.splitlines() if x.startswith("initialized "))
    taken, total = map(int, line.split()[1].split("/"))
    assert taken == total - 2  # everything but the CTC output layer (weight, bias)
    torch.testing.assert_close(load_model(run / "model.pt").front_end.mean, load_model(classifier / "model.pt").front_end.mean)
    proc = run_train(*common, "features.kind=log_mel", f"hydra.run.dir={tmp_path / 'other'}")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "its features differ from this run's: kind='mfcc' (this run: 'log_mel')" in proc.stderr
    # a file from before features.top_db existed: no such key, so no floor, which differs from the recipe's 60 dB
    payload = read_payload(classifier / "model.pt")
    del payload["feature_config"]["top_db"]
    torch.save(payload, tmp_path / "old.pt")
    proc = run_train(*ctc, f"trainer.init_from={tmp_path / 'old.pt'}", f"hydra.run.dir={tmp_path / 'old'}")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "top_db=None (this run: 60.0)" in proc.stderr


def test_speech_commands_smoke_run_on_the_v1_sample_and_filler_classes(shared_dataset, tmp_path):
    """The recipe's own prepare step on a real Speech Commands layout (the v1 sample) with noise; half the
    training items are stream windows (speech.data.windows)."""
    run, data = tmp_path / "run", tmp_path / "data"
    prepare = (f"speech-commands --root {shared_dataset('speech_commands_v1_sample')} --version 1 --task 12 "
               f"--noise-dir {shared_dataset('background_noise')}")
    proc = run_train("recipe=speech_commands", f"data.root={data}", f"data.prepare='{prepare}'",
                     "data.cache_dir=null", "data.batch_size=16", "trainer.max_epochs=1", f"hydra.run.dir={run}",
                     "data.stream_windows=0.5", *TINY)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (data / "train.jsonl").is_file()
    payload = read_payload(run / "model.pt")
    assert set(payload["labels"]) == {"yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
                                      "_unknown_", "_silence_"}

    # three of the other words as filler classes (the prepared rows say _unknown_, their text the word),
    # warm-started from that model and taught by it; the file reports the same twelve labels
    common = ["recipe=speech_commands", f"data.root={data}", "data.cache_dir=null", "data.batch_size=16",
              "trainer.max_epochs=1", "trainer.max_steps=3", *TINY]
    fillers = tmp_path / "fillers"
    proc = run_train(*common, "model.filler_classes=[bed,bird,dog]", f"trainer.init_from={run / 'model.pt'}",
                     f"trainer.distill_from=[{run / 'model.pt'}]", f"hydra.run.dir={fillers}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "12 classes (and 3 filler classes)" in proc.stderr
    line = next(x for x in proc.stderr.splitlines() if x.startswith("initialized "))
    assert line.split()[1] == f"{len(payload['state_dict'])}/{len(payload['state_dict'])}"  # the head expanded too
    filled = read_payload(fillers / "model.pt")
    assert filled["labels"] == payload["labels"] and filled["model_config"]["filler_classes"] == ["bed", "bird", "dog"]
    model = load_model(fillers / "model.pt")
    assert model.head.output.out_features == 15
    assert model(torch.zeros(1, 16000), torch.tensor([16000]))[0].shape == (1, 12)
    proc = run_train(*common, "model.filler_classes=[bed,xylophone]", f"hydra.run.dir={tmp_path / 'bad'}")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "model.filler_classes: no training clip holds xylophone" in proc.stderr


def test_multirun_sweeps(fsdd_prepared, tmp_path):
    proc = run_train("recipe=fsdd_digits", "--multirun", f"data.root={fsdd_prepared}", "data.max_items=32",
                     "trainer.max_epochs=1", "trainer.seed=1,2", f"hydra.sweep.dir={tmp_path}", *TINY)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "0" / "model.pt").is_file() and (tmp_path / "1" / "model.pt").is_file()


def test_resume_after_kill_ends_with_the_same_model(fsdd_prepared, tmp_path):
    """Also with VTLP, tempo perturbation and checkpoint averaging on: the running average survives the kill too."""
    common = ["recipe=fsdd_digits", f"data.root={fsdd_prepared}", "data.max_items=64", "trainer.max_epochs=3",
              "augment.noise_prob=0.5", "augment.vtlp_prob=0.5", "augment.tempo_prob=0.5", "trainer.average_last=3",
              *TINY]
    reference = tmp_path / "reference"
    assert run_train(*common, f"hydra.run.dir={reference}").returncode == 0

    interrupted = tmp_path / "interrupted"
    proc = subprocess.Popen([sys.executable, "-m", "speech.train", *common, f"hydra.run.dir={interrupted}"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    last = interrupted / "checkpoints" / "last.pt"
    deadline = time.time() + 240
    while not last.is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert last.is_file(), "the run ended before writing its first checkpoint"
    assert not (interrupted / "model.pt").exists()
    resumed = run_train(*common, f"hydra.run.dir={interrupted}", "trainer.resume=true")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stderr
    a, b = read_payload(reference / "model.pt")["state_dict"], read_payload(interrupted / "model.pt")["state_dict"]
    assert read_metrics(interrupted)[-1]["averaged_epochs"] == 3  # the running sum survived the kill
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_two_process_ddp_on_cpu_keeps_ranks_in_sync(fsdd_prepared, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533",
         "-m", "speech.train", "recipe=fsdd_digits", f"data.root={fsdd_prepared}", "data.max_items=64",
         "trainer.max_epochs=1", "trainer.device=cpu", f"hydra.run.dir={run}", *TINY],
        cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((run / "results.json").read_text())
    assert results["world_size"] == 2
    first, second = results["rank_weight_checksums"]
    assert first == second
    assert (run / "model.pt").is_file()


def test_precision_names_the_autocast_dtype():
    from speech.train import autocast_dtype

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert autocast_dtype("auto", cpu) is None and autocast_dtype("auto", cuda) is torch.float16
    assert autocast_dtype("32", cuda) is None and autocast_dtype(32, cpu) is None  # Hydra may give an int
    assert autocast_dtype("bf16", cpu) is torch.bfloat16 and autocast_dtype(16, cuda) is torch.float16
    with pytest.raises(ValueError, match="trainer.precision must be"):
        autocast_dtype("fp8", cpu)


def test_checkpoint_averaging_is_the_mean_of_the_weights():
    from speech.features import FeatureConfig
    from speech.models.model import ModelConfig, SpeechModel
    from speech.train import accumulate_average

    models = [SpeechModel(ModelConfig(hidden_size=8, num_layers=1), FeatureConfig(n_mels=10), ["a", "b"]) for _ in range(3)]
    average: dict = {}
    for m in models:
        average = accumulate_average(average, m)
    assert average["count"] == 3
    name = "head.output.weight" if "head.output.weight" in average["sum"] else next(iter(average["sum"]))
    mean = sum(m.state_dict()[name].double() for m in models) / 3
    assert torch.allclose(average["sum"][name] / 3, mean)


def test_distillation_trains_toward_the_teachers_and_refuses_a_ctc_teacher(fsdd_prepared, tmp_path):
    """``trainer.distill_from``: a real run taught by two classifiers, one of them on another front end
    (log-mels for an MFCC student), records them; the teachers' posterior is what each teacher gives the
    audio on its own, though the features reach the first normalized with the student's statistics and the
    second computes its own from the audio; a CTC model is refused in one line."""
    from speech.distill import distillation_loss, load_teachers
    from speech.models.model import SpeechModel

    common = ["recipe=fsdd_digits", f"data.root={fsdd_prepared}", "data.fold=fold_lucas", "data.max_items=64",
              "trainer.max_epochs=1", *TINY]
    teachers = []
    for seed, front_end in ((1, "mfcc"), (2, "log_mel")):
        run = tmp_path / f"teacher{seed}"
        proc = run_train(*common, f"trainer.seed={seed}", f"features={front_end}", f"hydra.run.dir={run}")
        assert proc.returncode == 0, proc.stderr[-2000:]
        teachers.append(str(run / "model.pt"))
    student = tmp_path / "student"
    proc = run_train(*common, f"trainer.distill_from=[{','.join(teachers)}]", "trainer.distill_weight=1.0",
                     f"hydra.run.dir={student}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "distilling from 2 teachers" in proc.stderr
    assert read_payload(student / "model.pt")["info"]["distilled_from"] == teachers
    assert read_metrics(student)[0]["train_loss"] >= 0  # a KL divergence alone
    # teachers that hear the clips on the clean channel, the student down the telephone line
    lined = tmp_path / "lined"
    proc = run_train(*common, f"trainer.distill_from=[{teachers[0]}]", "trainer.distill_clean_channel=true",
                     "augment.telephone_prob=0.5", "augment.band_limit_prob=0.5", f"hydra.run.dir={lined}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert read_payload(lined / "model.pt")["info"]["distilled_clean_channel"] is True
    assert "distilled_clean_channel" not in read_payload(student / "model.pt")["info"]

    # the teachers' features: for the MFCC one the student's normalization undone and its own applied,
    # the log-mel one's from the audio
    one, two = load_model(teachers[0]), load_model(teachers[1])
    assert (one.feature_config.kind, two.feature_config.kind) == ("mfcc", "log_mel")
    fresh = SpeechModel(one.config, one.feature_config, one.labels).eval()
    fresh.front_end.set_statistics(one.front_end.mean + 3.0, one.front_end.std * 2.0)
    taught = load_teachers(teachers, fresh, 1.0, "cpu")
    assert taught.own_features == [True, False]
    wave = torch.randn(3, 16000) * 0.1
    lengths = torch.tensor([16000, 12000, 8000])
    with torch.no_grad():
        feats, n_frames = fresh.front_end(wave, lengths)
        expected = (torch.softmax(one(wave, lengths)[0], -1) + torch.softmax(two(wave, lengths)[0], -1)) / 2
        got = taught(feats, n_frames, wave, lengths)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="needs the audio"):
        taught(feats, n_frames)
    assert torch.allclose(got.sum(-1), torch.ones(3))
    assert float(distillation_loss(torch.log(got), got)) == pytest.approx(0.0, abs=1e-6)  # the teachers' own answer

    ctc = tmp_path / "ctc"
    proc = run_train("recipe=digit_strings_ctc", f"data.root={fsdd_prepared}", "data.fold=fold_lucas", "data.train_size=16",
                     "data.eval_size=4", "data.max_items=100", "trainer.max_epochs=1", "trainer.max_steps=1", *TINY,
                     f"hydra.run.dir={ctc}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = run_train(*common, f"trainer.distill_from=[{ctc / 'model.pt'}]", f"hydra.run.dir={tmp_path / 'bad'}")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert f"trainer.distill_from: {ctc / 'model.pt'}: a CTC model cannot teach a classifier" in proc.stderr
