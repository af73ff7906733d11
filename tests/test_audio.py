"""``speech.audio``: every format soundfile writes, channel mixing, resampling, and one-line errors for
every kind of bad file (all files are written by the tests; the FSDD check reads real clips)."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from speech.audio import AudioError, audio_info, find_audio_files, load_audio, load_audio_native, save_audio

torch.set_num_threads(1)

RATE = 16000


def tone(freq: float = 440.0, seconds: float = 1.0, rate: int = RATE, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float64)


def write(path: Path, data: np.ndarray, rate: int = RATE, subtype: str = "PCM_16", **kw) -> Path:
    sf.write(str(path), data, rate, subtype=subtype, **kw)
    return path


def peak_frequency(x: torch.Tensor, rate: int) -> float:
    """Frequency of the largest FFT bin of a Hann-windowed signal, refined by parabolic interpolation."""
    x = x.double().numpy()
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    k = int(np.argmax(spectrum))
    a, b, c = np.log(spectrum[k - 1 : k + 2])
    delta = 0.5 * (a - c) / (a - 2 * b + c)
    return (k + delta) * rate / len(x)


def assert_one_line_error(err: pytest.ExceptionInfo, path: Path, *causes: str) -> str:
    message = str(err.value)
    assert isinstance(err.value, AudioError)
    assert "\n" not in message and "\r" not in message, message
    assert message.startswith(f"{path}: "), message
    assert err.value.path == str(path)
    assert any(c in message for c in causes), message
    return message


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    "subtype, step",
    [("PCM_U8", 1 / 128), ("PCM_16", 1 / 32768), ("PCM_24", 1 / 2**23), ("PCM_32", 1 / 2**31), ("FLOAT", 1e-7)],
)
def test_wav_sample_formats(tmp_path, subtype, step):
    """Every WAV sample format decodes to float32 at the right scale: within one quantization step."""
    x = tone(seconds=0.25)
    path = write(tmp_path / f"{subtype}.wav", x, subtype=subtype)
    y = load_audio(path)
    assert y.dtype == torch.float32 and y.ndim == 1 and len(y) == len(x)
    assert np.max(np.abs(y.numpy() - x)) <= step + 1e-7


def test_int16_full_scale_is_within_minus_one_one(tmp_path):
    data = np.array([-32768, -16384, 0, 16384, 32767] * 100, dtype=np.int16)
    path = write(tmp_path / "full.wav", data)
    y = load_audio(path)
    assert y.dtype == torch.float32
    assert float(y.min()) == -1.0 and float(y.max()) == pytest.approx(32767 / 32768) and float(y.max()) < 1.0
    assert y[:5].tolist() == [-1.0, -0.5, 0.0, 0.5, 32767 / 32768]


def test_flac_is_lossless(tmp_path):
    x = np.round(tone(seconds=0.5) * 32767).astype(np.int16)  # integer samples: no float->int rounding
    y = load_audio(write(tmp_path / "a.flac", x, subtype="PCM_16"))
    ref = load_audio(write(tmp_path / "a.wav", x, subtype="PCM_16"))
    assert torch.equal(y, ref)
    assert torch.equal(y, torch.from_numpy(x.astype(np.float32) / 32768))


def test_ogg_vorbis_decodes_the_tone(tmp_path):
    x = tone(seconds=1.0)
    path = write(tmp_path / "a.ogg", x, subtype="VORBIS")
    y = load_audio(path)
    assert y.dtype == torch.float32 and abs(len(y) - len(x)) <= 1024
    assert peak_frequency(y, RATE) == pytest.approx(440.0, abs=1.0)
    n = min(len(x), len(y))
    corr = np.corrcoef(x[:n], y[:n].numpy())[0, 1]
    assert corr > 0.99  # lossy, but the waveform is kept


def test_stereo_is_averaged(tmp_path):
    left, right = tone(440, 0.25), tone(1000, 0.25, amplitude=0.25)
    path = write(tmp_path / "stereo.wav", np.stack([left, right], 1), subtype="FLOAT")
    y = load_audio(path)
    assert y.shape == (len(left),)
    assert np.allclose(y.numpy(), (left + right) / 2, atol=1e-6)
    # four channels, too
    chans = np.stack([left, -left, right, 0.5 * right], 1)
    y4 = load_audio(write(tmp_path / "quad.wav", chans, subtype="FLOAT"))
    assert np.allclose(y4.numpy(), chans.mean(1), atol=1e-6)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resampling_keeps_length_and_pitch(tmp_path, rate):
    x = tone(440.0, seconds=1.0, rate=rate)
    path = write(tmp_path / f"r{rate}.wav", x, rate=rate, subtype="FLOAT")
    y = load_audio(path, 16000)
    assert y.dtype == torch.float32
    assert abs(len(y) - 16000) <= 1  # 1 s stays 1 s
    assert peak_frequency(y, 16000) == pytest.approx(440.0, abs=0.5)
    assert float(y.abs().max()) == pytest.approx(0.5, abs=0.02)  # the level is kept too
    native, native_rate = load_audio_native(path)
    assert native_rate == rate and len(native) == len(x)
    assert len(load_audio(path, None)) == len(x)


def test_offset_and_duration_read_a_part(tmp_path):
    x = np.arange(RATE, dtype=np.float64) / RATE - 0.5  # a ramp: the position is visible in the value
    path = write(tmp_path / "ramp.wav", x, subtype="FLOAT")
    y = load_audio(path, offset=0.25, duration=0.5)
    assert len(y) == 8000
    assert np.allclose(y.numpy(), x[4000:12000], atol=1e-7)
    assert audio_info(path) == (RATE, RATE, 1)


def test_real_fsdd_clip(shared_dataset):
    clips = find_audio_files(shared_dataset("fsdd") / "recordings")
    assert len(clips) == 2500
    path = clips[0]
    rate, frames, channels = audio_info(path)
    assert (rate, channels) == (8000, 1)
    y = load_audio(path)
    assert y.dtype == torch.float32 and abs(len(y) - 2 * frames) <= 1
    assert float(y.abs().max()) <= 1.0 and float(y.abs().max()) > 0.01


# --------------------------------------------------------------------------- bad files


@pytest.fixture
def good_wav(tmp_path) -> Path:
    return write(tmp_path / "good.wav", tone(seconds=0.5))


def test_missing_file(tmp_path):
    path = tmp_path / "nope.wav"
    with pytest.raises(AudioError) as err:
        load_audio(path)
    assert_one_line_error(err, path, "no such file")


def test_directory(tmp_path):
    path = tmp_path / "folder.wav"
    path.mkdir()
    with pytest.raises(AudioError) as err:
        load_audio(path)
    assert_one_line_error(err, path, "directory")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioError) as err:
        load_audio(path)
    assert_one_line_error(err, path, "empty file")


def test_text_file_named_wav(tmp_path):
    path = tmp_path / "text.wav"
    path.write_text("this is not audio\n" * 20)
    with pytest.raises(AudioError) as err:
        load_audio(path)
    assert_one_line_error(err, path, "not an audio file")


def test_truncated_header(tmp_path, good_wav):
    path = tmp_path / "header.wav"
    path.write_bytes(good_wav.read_bytes()[:20])
    with pytest.raises(AudioError) as err:
        load_audio(path)
    assert_one_line_error(err, path, "cannot read audio", "truncated", "not an audio file")


@pytest.mark.parametrize("keep", [44, 1000, 0.5])
def test_truncated_data(tmp_path, good_wav, keep):
    """A WAV cut short: the header claims more frames than the file holds (libsndfile alone would
    silently return the shorter signal)."""
    data = good_wav.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else keep
    path = tmp_path / "cut.wav"
    path.write_bytes(data[:n])
    with pytest.raises(AudioError) as err:
        load_audio(path)
    assert_one_line_error(err, path, "truncated")
    with pytest.raises(AudioError):
        audio_info(path)  # caught from the header alone, so ``speech prepare`` skips it too


def test_streaming_wav_with_placeholder_size_is_accepted(tmp_path, good_wav):
    """Pipes write 0xFFFFFFFF as the data size (length unknown): that is not truncation."""
    data = bytearray(good_wav.read_bytes())
    i = data.find(b"data")
    data[i + 4 : i + 8] = struct.pack("<I", 0xFFFFFFFF)
    data[4:8] = struct.pack("<I", 0xFFFFFFFF)
    path = tmp_path / "stream.wav"
    path.write_bytes(bytes(data))
    assert torch.equal(load_audio(path), load_audio(good_wav))


def test_zero_samples(tmp_path):
    path = write(tmp_path / "zero.wav", np.zeros(0))
    assert path.stat().st_size > 0
    with pytest.raises(AudioError) as err:
        load_audio(path)
    assert_one_line_error(err, path, "no audio samples")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_samples(tmp_path, bad):
    x = tone(seconds=0.25).astype(np.float32)
    x[100] = bad
    path = write(tmp_path / "nan.wav", x, subtype="FLOAT")
    with pytest.raises(AudioError) as err:
        load_audio(path)
    assert_one_line_error(err, path, "NaN or Inf")


def test_duration_over_limit(tmp_path):
    path = write(tmp_path / "long.wav", tone(seconds=2.0))
    with pytest.raises(AudioError) as err:
        load_audio(path, max_duration=1.5)
    assert_one_line_error(err, path, "over the limit of 1.5 s")
    assert len(load_audio(path, max_duration=None)) == 2 * RATE
    assert len(load_audio(path, max_duration=2.0)) == 2 * RATE
    assert len(load_audio(path, duration=1.0, max_duration=1.5)) == RATE  # reading a part is fine


def test_audio_error_is_a_value_error():
    err = AudioError("x.wav", "cause")
    assert isinstance(err, ValueError) and str(err) == "x.wav: cause" and err.cause == "cause"


# --------------------------------------------------------------------------- saving


@pytest.mark.parametrize("name, subtype", [("a.wav", "PCM_16"), ("a.flac", "PCM_16"), ("a.wav", "FLOAT")])
def test_save_audio_round_trip_leaves_no_temp_file(tmp_path, name, subtype):
    x = torch.from_numpy(tone(seconds=0.25)).float()
    path = tmp_path / name
    save_audio(path, x, RATE, subtype=subtype)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    y = load_audio(path)
    assert np.max(np.abs(y.numpy() - x.numpy())) <= 1 / 32768 + 1e-7
    # overwriting replaces the file in one step, still nothing else in the folder
    save_audio(path, np.zeros(100), RATE, subtype=subtype)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name] and len(load_audio(path)) == 100


def test_save_audio_clips_to_full_scale(tmp_path):
    path = tmp_path / "loud.wav"
    save_audio(path, np.array([2.0, -3.0, 0.5]), RATE, subtype="FLOAT")
    assert load_audio(path).tolist() == [1.0, -1.0, 0.5]


def test_failed_save_keeps_old_file_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "a.wav"
    save_audio(path, tone(seconds=0.1), RATE)
    before = path.read_bytes()
    with pytest.raises(ValueError):
        save_audio(path, np.zeros((2, 2, 2)), RATE)  # soundfile fails after opening the temp file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]
    assert path.read_bytes() == before
