"""flite (``apt-get install flite``): small diphone/cluster-unit voices, rate by ``duration_stretch``,
pitch by ``int_f0_target_mean`` (rms: sox)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from speech.synth.engines.base import Engine, run_engine
from speech.synth.plan import ClipSpec

# Voice -> its default F0 in Hz when flite can retarget pitch itself; None -> sox shifts the pitch.
FLITE_VOICES: dict[str, float | None] = {"kal16": 100.0, "kal": 100.0, "awb": 139.0, "slt": 178.0, "rms": None}


class Flite(Engine):
    name = "flite"
    no_voices = f"flite lists none of {', '.join(FLITE_VOICES)}"

    def missing(self) -> str | None:
        return None if shutil.which("flite") else "flite not installed (apt-get install flite)"

    def voices(self) -> list[str]:
        listed = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout.split()
        return [v for v in FLITE_VOICES if v in listed]

    def render(self, spec: ClipSpec, workdir: Path) -> tuple[np.ndarray, int, bool]:
        out = workdir / "flite.wav"
        cmd = ["flite", "-voice", spec.voice, "--setf", f"duration_stretch={1 / spec.rate:.3f}"]
        base_f0 = FLITE_VOICES.get(spec.voice)
        if base_f0:
            cmd += ["--setf", f"int_f0_target_mean={base_f0 * 2 ** (spec.semitones / 12):.1f}"]
        audio, rate = run_engine(spec, cmd + ["-t", spec.text, "-o", str(out)], out)
        return audio, rate, base_f0 is not None
