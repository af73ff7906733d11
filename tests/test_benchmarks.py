"""Benchmarks (speech/bench/): tiny smoke runs of each benchmark function on real clips. They check
that each runs and returns sane fields; no timing is asserted (the machine may be shared)."""
from __future__ import annotations

import argparse
import importlib.util
import math

import numpy as np
import pytest
import torch

from speech.bench import features, measure, train, train_memory, transcribe

REPO = measure.REPO_ROOT


def positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


# ------------------------------------------------------------------------------------------- pieces
def test_to_12_classes_maps_words_silence_and_unknown():
    assert transcribe.to_12_classes("yes") == "yes"
    assert transcribe.to_12_classes(" Stop ") == "stop"
    assert transcribe.to_12_classes("") == measure.SILENCE and transcribe.to_12_classes(measure.SILENCE) == measure.SILENCE
    assert transcribe.to_12_classes("marvin") == measure.UNKNOWN and transcribe.to_12_classes(measure.UNKNOWN) == measure.UNKNOWN
    assert len(transcribe.SPEECH_COMMANDS_WORDS) == len(set(transcribe.SPEECH_COMMANDS_WORDS)) == 35


def test_evenly_spaced_and_interleaved_rotate():
    assert measure.evenly_spaced(list(range(10)), 5) == [0, 2, 4, 6, 8]
    assert measure.evenly_spaced([1, 2], 0) == [1, 2]
    calls = []
    times = measure.interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3)
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert all(len(v) == 3 and all(t >= 0 for t in v) for v in times.values())
    assert measure.paired_ratio([2.0, 4.0, 6.0], [1.0, 1.0, 1.0]) == 4.0


def test_markdown_table_and_machine_info():
    table = measure.markdown_table(["a", "b"], [["x", 1234.5], ["y", None]])
    assert table.splitlines()[0] == "| a | b |" and "1,234" in table and "| y | - |" in table
    info = measure.machine_info()
    assert info["cores"] >= 1 and info["torch_threads"] >= 1 and info["cpu"]
    assert "cores" in measure.machine_line(info)


def test_simulated_cache_layout_matches_decoded_audio_cache(tmp_path):
    train_memory.check_cache_layout(tmp_path)  # raises when DecodedAudioCache's file key or index changes


def test_cache_built_into_a_memmap_equals_the_in_memory_one(shared_dataset, tmp_path):
    from speech.data.dataset import DecodedAudioCache
    from speech.data.manifest import Utterance

    files = sorted((shared_dataset(measure.SPEECH_COMMANDS_TEST) / "yes").glob("*.wav"))[:3]
    rows = [Utterance(str(f), 1.0, "yes") for f in files] + [Utterance(str(tmp_path / "absent.wav"), 1.0, "yes")]
    in_ram = DecodedAudioCache(rows, 16000, None, verbose=False)
    mapped = DecodedAudioCache(rows, 16000, str(tmp_path / "cache"), verbose=False)
    assert isinstance(mapped.samples, np.memmap) and mapped.kept == in_ram.kept == [0, 1, 2]
    assert np.array_equal(np.asarray(mapped.samples), in_ram.samples)
    assert not list((tmp_path / "cache").glob("*.tmp*"))


def test_front_end_batch_chunking_changes_nothing():
    from speech.features import FeatureConfig, FrontEnd

    torch.manual_seed(0)
    waves, lengths = torch.randn(23, 16000) * 0.1, torch.randint(400, 16001, (23,))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the chunking is on with one thread only
    try:
        for kind in ("mfcc", "log_mel"):
            front_end = FrontEnd(FeatureConfig(kind=kind, deltas=1, normalize="utterance")).eval()
            chunked, n1 = front_end(waves, lengths)
            front_end.chunk_frames = 1 << 40
            whole, n2 = front_end(waves, lengths)
            assert torch.equal(n1, n2) and torch.allclose(chunked, whole, atol=1e-6)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("name", ["features", "train", "transcribe"])
def test_entry_points_parse_their_defaults(name):
    module = importlib.import_module(f"speech.bench.{name}")
    parser = argparse.ArgumentParser()
    getattr(module, f"add_{name}_arguments")(parser)
    args = parser.parse_args([])
    assert args.threads == 1 and callable(getattr(module, f"run_{name}"))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "tools" / f"bench_{name}.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    with pytest.raises(SystemExit) as exit_:
        tool.main(["--help"])
    assert exit_.value.code == 0


# ----------------------------------------------------------------------------------- smoke runs
def test_features_benchmark_smoke(shared_data):
    result = features.benchmark_features(clips=8, batch_size=4, reference_clips=4, repeats=1, data_dir=str(shared_data))
    names = [r["name"] for r in result["rows"]]
    assert names[0] == "ours" and "librosa (reference)" in names
    for row in result["rows"]:
        assert positive(row["clips_per_second"]) and positive(row["ratio_vs_librosa"])
    assert positive(result["ratio"]) and result["parity_max_abs_diff"] < 1e-2  # same parameters, same features
    text = features.format_features(result)
    assert "| ours |" in text and "librosa" in text and result["machine"]["cpu"] in text


def test_train_benchmark_smoke(shared_data):
    result = train.benchmark_train(clips=8, batch_size=4, repeats=1, model={"hidden_size": 16, "num_layers": 1},
                                   memory_clips=60, float_clips=10, build_clips=8, gpu=False,
                                   data_dir=str(shared_data), precision="bf16")
    cpu = result["summary"]["cpu"]
    for which in ("reference", "ours"):
        row = cpu[which]
        assert row["utterances_per_epoch"] == 8 and positive(row["utterances_per_second"])
        assert 0 < row["data_fraction"] < 1 and positive(row["peak_rss_mb"])
    assert positive(cpu["ratio"]) and positive(cpu["data_ratio"])
    memory = result["memory"]
    assert memory["clips_seen"] == 60 and positive(memory["peak"]["RssAnon"])
    assert memory["float_clips"] == 10 and memory["build"]["clips"] == 8
    text = train.format_train(result)
    assert "Ours / reference" in text and ("no GPU here" in text or result["gpu"])
    assert "precision bf16" in text and result["params"]["precision"] == "bf16"  # ours in bf16, the reference not


def test_transcribe_benchmark_smoke(shared_data):
    pytest.importorskip("pocketsphinx")
    result = transcribe.benchmark_transcribe(clips=6, repeats=1, random_model=True, data_dir=str(shared_data))
    for row in result["rows"].values():
        assert row["count"] == 6 and row["missing"] == 0 and 0 <= row["accuracy"] <= 1
        assert positive(row["clips_per_second_steady"]) and positive(row["peak_rss_mb"])
    assert positive(result["ratio_steady"]) and result["provisional"]
    assert "Provisional" in transcribe.format_transcribe(result)


def test_transcribe_benchmark_cold_start_and_workers(shared_data):
    """The bundled model, two worker processes, the onnx engine, and the one-file cold start of both tools."""
    pytest.importorskip("pocketsphinx")
    pytest.importorskip("onnxruntime")
    result = transcribe.benchmark_transcribe(clips=24, repeats=1, data_dir=str(shared_data), engine="onnx", workers=2,
                                             cold_repeats=1)
    ours = result["rows"]["ours"]
    assert ours["count"] == 24 and ours["missing"] == 0 and ours["accuracy"] > 0.5  # real answers from both processes
    cold = result["cold_start"]
    assert positive(cold["ours_s"]) and positive(cold["sphinx_s"]) and cold["command"].startswith("speech transcribe ")
    text = transcribe.format_transcribe(result)
    assert "Cold start" in text and "compute bound" in text and result["params"]["workers"] == 2


def test_whisper_transcripts_are_normalized_and_mapped_to_the_closest_command():
    from speech.bench import whisper

    assert whisper.normalize(" Yes.") == "yes" and whisper.normalize("Go!") == "go"
    assert whisper.normalize("4 on") == "four on" and whisper.normalize("Left, right?") == "left right"
    assert whisper.closest_command("yeah") == "yes" and whisper.closest_command("stopped") == "stop"
    assert whisper.closest_command("") in measure.COMMANDS


def test_whisper_benchmark_runs_or_says_what_to_install(shared_data, tmp_path, capsys):
    """Whisper base is an optional extra: with it the benchmark scores both recognizers on the same real
    clips; without it, one line naming what to install and exit 2."""
    import json

    from conftest import run_speech
    from speech.bench import whisper

    folder = shared_data / measure.SPEECH_COMMANDS_TEST
    rows = [{"audio_filepath": str(p), "duration": 1.0, "label": w}
            for w in ("yes", "stop") for p in sorted((folder / w).glob("*.wav"))[:2]]
    manifest = tmp_path / "clips.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    if whisper.missing():
        rc, _, err = run_speech(capsys, "bench", "whisper", "--manifest", manifest)
        assert rc == 2 and "pip install 'speech[whisper]'" in err and "Traceback" not in err
        return
    result = whisper.benchmark_whisper(str(manifest), 0)
    for row in result["rows"].values():
        assert 0 <= row["exact"] <= row["forced_choice"] <= 1 and positive(row["clips_per_second"])
    assert result["rows"]["ours"]["forced_choice"] >= 0.75 and result["params"]["clips"] == 4
    assert "Whisper base" in whisper.format_whisper(result)


def test_transcribe_memory_does_not_grow_with_the_number_of_files(shared_data, tmp_path):
    """``speech transcribe FOLDER`` (worker processes, as from 1,000 files) on 1,000 and 4,000 files (links to
    real clips; a small random-weight model): every file gets its line, the main process peaks within a
    few MB (the input list grows by ~1 MB), and the workers within what their batches move between
    samples (measured: up to 13 MB), far below what keeping each decoded clip would add (~32 KB a file,
    ~50 MB a worker here)."""
    model = transcribe.make_random_model(tmp_path / "tiny.pt", hidden_size=16, num_layers=1)
    small, large = transcribe.transcribe_memory([1000, 4000], str(model), str(shared_data), str(tmp_path))
    assert (small["lines"], large["lines"]) == (1000, 4000) and small["workers"] == large["workers"]
    assert large["main_peak_mb"] - small["main_peak_mb"] < 8, (small, large)  # the input list: ~1 MB per 3,000 files
    if small["workers"]:  # one process per usable core: none on a one-core machine
        assert large["worker_peak_mb"] - small["worker_peak_mb"] < 24, (small, large)
    assert "| 4000 |" in transcribe.format_memory([small, large])



def test_tree_peak_counts_lasting_workers_not_helpers_that_came_and_went():
    """A real process tree, sampled by hand: a parent with a forked worker and a helper (``sleep``); the
    helper ends before the second sample, the worker lives through both. Only the worker is a lasting
    descendant, so the memory benchmark's worker count does not grow when an import runs a helper."""
    import subprocess
    import sys

    script = ("import os, subprocess, sys, time\n"
              "pid = os.fork()\n"
              "if pid == 0:\n    time.sleep(60)\n    os._exit(0)\n"
              "helper = subprocess.Popen(['sleep', '60'])\n"
              "print('ready', helper.pid, pid, flush=True); sys.stdin.readline()\n"
              "helper.kill(); helper.wait(); print('helper gone', flush=True); sys.stdin.readline()\n"
              "os.kill(pid, 9); os.waitpid(pid, 0)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        _, helper, worker = proc.stdout.readline().split()
        sampler = measure.TreePeak(proc.pid)
        sampler.sample()
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "helper gone"
        sampler.sample()
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    assert set(sampler.peaks) == {proc.pid, int(helper), int(worker)}  # the helper was seen ...
    assert list(sampler.lasting()) == [int(worker)] and sampler.lasting()[int(worker)] > 0  # ... and left out
