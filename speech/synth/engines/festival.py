"""festival's ``text2wave`` (``apt-get install festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts``):
diphone voices (rate by ``Duration_Stretch``, pitch by the ``int_lr_params`` F0 target) and an HTS voice
(rate by hts_engine's ``-r``, pitch by sox)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from speech.synth.engines.base import Engine, run_engine
from speech.synth.plan import ClipSpec

# Voice -> its default F0 in Hz for diphone voices; None (HTS) -> sox shifts the pitch.
FESTIVAL_VOICES: dict[str, float | None] = {"kal_diphone": 105.0, "ked_diphone": 105.0, "cmu_us_slt_arctic_hts": None}
FESTIVAL_VOICE_DIRS = ("/usr/share/festival/voices", "/usr/lib/festival/voices", "/usr/local/share/festival/voices")
VOICE_PACKAGES = "festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"  # Debian


class Festival(Engine):
    name = "festival"
    no_voices = f"festival has none of its voices (apt-get install {VOICE_PACKAGES})"

    def missing(self) -> str | None:
        return None if shutil.which("text2wave") else f"festival not installed (apt-get install festival {VOICE_PACKAGES})"

    def voices(self) -> list[str]:
        installed = {p.name for d in FESTIVAL_VOICE_DIRS if Path(d).is_dir() for p in Path(d).glob("*/*")}
        return [v for v in FESTIVAL_VOICES if v in installed]

    def render(self, spec: ClipSpec, workdir: Path) -> tuple[np.ndarray, int, bool]:
        out = workdir / "festival.wav"
        evals = [f"(voice_{spec.voice})"]
        base_f0 = FESTIVAL_VOICES.get(spec.voice)
        if base_f0:  # diphone voices: duration stretch and the linear-regression F0 target
            factor = 2 ** (spec.semitones / 12)
            evals += [
                f"(Parameter.set 'Duration_Stretch {1 / spec.rate:.3f})",
                f"(set! int_lr_params '((target_f0_mean {base_f0 * factor:.1f}) (target_f0_std {14 * factor:.1f})"
                " (model_f0_mean 170) (model_f0_std 34)))",
            ]
        else:  # HTS voices: hts_engine's speech-rate option
            evals.append(f'(set! hts_engine_params (append hts_engine_params (list (list "-r" {spec.rate:.3f}))))')
        cmd = ["text2wave", *[arg for e in evals for arg in ("-eval", e)], "-o", str(out)]
        audio, rate = run_engine(spec, cmd, out, stdin=spec.text + "\n")
        return audio, rate, base_f0 is not None
