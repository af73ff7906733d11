"""Memory that does not grow with the stream: ``speech listen --input-file`` on ten minutes of audio peaks
within a few MB of the same on one minute (the file is read block by block; nothing per hop outlives the
ring buffer). Real files, a real (small, random-weight) model, real processes."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import soundfile as sf

from conftest import REPO_ROOT

PEAK = """
import resource, sys
from speech.cli import main
rc = main(sys.argv[1:])
print("PEAK_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "RC", rc)
"""


def write_stream(path, minutes: float, rate: int = 16000) -> None:
    """Quiet noise with a short tone every 3 s, written a minute at a time (the test itself stays small)."""
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", samplerate=rate, channels=1, subtype="PCM_16") as f:
        for _ in range(int(minutes)):
            minute = 0.01 * rng.standard_normal(60 * rate).astype(np.float32)
            t = np.arange(int(0.3 * rate)) / rate
            for start in range(0, 60 * rate, 3 * rate):
                minute[start : start + len(t)] += 0.3 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
            f.write(minute)


def peak_kb(model, audio) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", PEAK, "listen", "--model", str(model), "--engine", "torch", "--input-file", str(audio),
         "--fast", "--json"], capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("PEAK_KB")]
    assert proc.returncode == 0 and line, proc.stderr[-2000:]
    assert line[0].split()[-1] == "0", proc.stderr[-2000:]
    return int(line[0].split()[1])


def test_listen_peak_memory_does_not_grow_with_the_file(tmp_path):
    from speech.bench.transcribe import make_random_model

    model = make_random_model(tmp_path / "tiny.pt", hidden_size=16, num_layers=1)
    one, ten = tmp_path / "one.wav", tmp_path / "ten.wav"
    write_stream(one, 1)
    write_stream(ten, 10)
    assert sf.info(ten).frames == 10 * sf.info(one).frames  # 19 MB of PCM, 38 MB as float32 in memory
    short, long = peak_kb(model, one), peak_kb(model, ten)
    assert long - short < 8 * 1024, (short, long)  # reading the whole file would add ~38 MB


def test_a_truncated_file_ends_the_stream_with_one_line(tmp_path, capsys):
    """Read block by block, a file whose data stops before its header says still fails with the file's name."""
    from conftest import run_speech
    from speech.bench.transcribe import make_random_model

    model = make_random_model(tmp_path / "tiny.pt", hidden_size=16, num_layers=1)
    whole = tmp_path / "whole.flac"
    sf.write(whole, 0.1 * np.random.default_rng(0).standard_normal(16000 * 20).astype(np.float32), 16000)
    cut = tmp_path / "cut.flac"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    rc, _, err = run_speech(capsys, "listen", "--model", model, "--engine", "torch", "--input-file", cut, "--fast", "--json")
    assert rc == 2 and "cut.flac" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if "cut.flac: " in line]) == 1  # the error, once
