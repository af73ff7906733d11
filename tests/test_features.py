"""``speech.features``: the front end against librosa on real FSDD clips, the export (conv) STFT against
``torch.stft``, shapes, padding invariance, normalization, statistics and config validation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from speech.audio import load_audio
from speech.features import FeatureConfig, FeatureStatistics, FrontEnd, frame_lengths, lengths_to_mask

torch.set_num_threads(1)

FSDD_CLIPS = ["0_jackson_0", "3_theo_10", "7_nicolas_5"]  # three speakers, short to long


@pytest.fixture(scope="module")
def fsdd_clip(shared_dataset):
    folder = shared_dataset("fsdd") / "recordings"
    cache = {}

    def get(name: str) -> torch.Tensor:
        if name not in cache:
            cache[name] = load_audio(folder / f"{name}.wav", 16000)  # 8 kHz file resampled to 16 kHz
        return cache[name]

    return get


def librosa_log_mel(y: np.ndarray) -> np.ndarray:
    """``(n_mels, frames)`` dB, librosa with the front end's parameters (slaney mel scale and norm,
    periodic Hann 400 in a 512 FFT, centred frames with zero padding)."""
    librosa = pytest.importorskip("librosa")
    mel = librosa.feature.melspectrogram(
        y=y, sr=16000, n_fft=512, hop_length=160, win_length=400, n_mels=40, fmin=0, center=True, pad_mode="constant"
    )
    return librosa.power_to_db(mel, top_db=None)


def features(config: FeatureConfig, wave: torch.Tensor) -> np.ndarray:
    """One clip through a front end -> ``(dim, frames)`` like librosa."""
    feats, n = FrontEnd(config)(wave[None], torch.tensor([len(wave)]))
    assert int(n[0]) == feats.shape[1] == 1 + len(wave) // 160
    return feats[0].numpy().T


# --------------------------------------------------------------------------- against librosa


@pytest.mark.parametrize("name", FSDD_CLIPS)
def test_mfcc_matches_librosa(fsdd_clip, name):
    """MFCC equals ``librosa.feature.mfcc(S=power_to_db(melspectrogram(...), top_db=None), n_mfcc=13)``.

    Tolerance: atol 5e-3 on coefficients up to ~400-500 in magnitude (about 1e-5 relative). Measured
    max abs difference: 1.1e-3 (0_jackson_0), 2.6e-4 (3_theo_10), 5.2e-4 (7_nicolas_5); the difference is
    float32 round-off, largest where mel bins sit near the -100 dB floor.
    """
    librosa = pytest.importorskip("librosa")
    y = fsdd_clip(name)
    ref = librosa.feature.mfcc(S=librosa_log_mel(y.numpy()), n_mfcc=13)
    ours = features(FeatureConfig(kind="mfcc", n_mfcc=13, n_mels=40, f_min=0, normalize="none"), y)
    assert ours.shape == ref.shape
    assert np.abs(ref).max() > 200  # real speech, large c0
    np.testing.assert_allclose(ours, ref, rtol=0, atol=5e-3)


@pytest.mark.parametrize("name", FSDD_CLIPS)
def test_log_mel_matches_librosa(fsdd_clip, name):
    """Log-mel equals ``librosa.power_to_db(melspectrogram(...), top_db=None)``.

    Tolerances: 1e-2 dB on every bin (measured max 3.2e-3 dB, in near-silent bins at -85..-100 dB where
    float32 round-off dominates) and 1e-3 dB on bins within 60 dB of the clip's maximum (measured 7e-5 dB).
    """
    y = fsdd_clip(name)
    ref = librosa_log_mel(y.numpy())
    ours = features(FeatureConfig(kind="log_mel", n_mels=40, f_min=0, normalize="none"), y)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-2)
    strong = ref > ref.max() - 60
    assert strong.mean() > 0.3
    np.testing.assert_allclose(ours[strong], ref[strong], rtol=0, atol=1e-3)


def test_default_f_min_and_f_max_follow_librosa(fsdd_clip):
    """The default config (f_min=20 Hz) matches librosa with fmin=20; f_max=4000 matches fmax=4000."""
    librosa = pytest.importorskip("librosa")
    y = fsdd_clip(FSDD_CLIPS[1])
    for f_min, f_max in ((20.0, None), (0.0, 4000.0)):
        mel = librosa.feature.melspectrogram(
            y=y.numpy(), sr=16000, n_fft=512, hop_length=160, win_length=400, n_mels=40, fmin=f_min,
            fmax=f_max, center=True, pad_mode="constant",
        )
        ref = librosa.power_to_db(mel, top_db=None)
        ours = features(FeatureConfig(f_min=f_min, f_max=f_max, normalize="none"), y)
        strong = ref > ref.max() - 60
        np.testing.assert_allclose(ours[strong], ref[strong], rtol=0, atol=1e-3)


# --------------------------------------------------------------------------- conv STFT (export path)


def power_both_ways(front: FrontEnd, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    padded = torch.nn.functional.pad(wave, (front.n_fft // 2, front.n_fft // 2))
    front.use_conv_stft = False
    stft = front._power_spectrum(padded)
    front.use_conv_stft = True
    conv = front._power_spectrum(padded)
    front.use_conv_stft = False
    return stft, conv


def test_conv_stft_matches_torch_stft_in_power(fsdd_clip):
    """The conv1d DFT and ``torch.stft`` agree in the power domain to 1e-5 of the clip's peak power per
    bin (measured <= 5.4e-7). In dB, near-silent bins (1e-9 of the peak) differ much more than loud ones
    because float32 round-off is relative to the peak, not the bin, so dB is only compared where the
    power is within 40 dB of the peak: tolerance 1e-3 dB (measured <= 7e-5 dB)."""
    front = FrontEnd(FeatureConfig(kind="log_mel", normalize="none"))
    for name in FSDD_CLIPS:
        wave = fsdd_clip(name)[None]
        stft, conv = power_both_ways(front, wave)
        assert stft.shape == conv.shape == (1, 1 + wave.shape[1] // 160, 257)
        peak = float(stft.max())
        assert float((conv - stft).abs().max()) <= 1e-5 * peak
        strong = stft > peak * 1e-4
        db_diff = 10 * torch.log10(conv[strong] / stft[strong])
        assert float(db_diff.abs().max()) < 1e-3


def test_conv_stft_front_end_matches_on_a_batch():
    """Whole front end, a padded batch of noise: features from both STFTs agree (relative criterion on
    mel power; dB and MFCC values agree closely because noise has no near-silent bins)."""
    g = torch.Generator().manual_seed(0)
    wave = torch.randn(3, 12000, generator=g) * 0.1
    lengths = torch.tensor([12000, 8000, 5001])
    for kind in ("log_mel", "mfcc"):
        front = FrontEnd(FeatureConfig(kind=kind, normalize="none", deltas=1))
        a, na = front(wave, lengths)
        front.use_conv_stft = True
        b, nb = front(wave, lengths)
        assert torch.equal(na, nb)
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-3)


# --------------------------------------------------------------------------- shapes and padding


@pytest.mark.parametrize(
    "kind, deltas, dim", [("log_mel", 0, 40), ("log_mel", 1, 80), ("log_mel", 2, 120), ("mfcc", 0, 13), ("mfcc", 2, 39)]
)
def test_shapes_and_frame_lengths(kind, deltas, dim):
    config = FeatureConfig(kind=kind, deltas=deltas, normalize="none")
    assert config.dim == dim and config.win_length == 400 and config.hop_length == 160
    lengths = torch.tensor([16000, 15999, 160, 1])
    wave = torch.randn(4, 16000) * 0.1
    feats, n = FrontEnd(config)(wave, lengths)
    assert feats.shape == (4, 1 + 16000 // 160, dim) and feats.dtype == torch.float32
    assert n.tolist() == [101, 100, 2, 1] == [1 + int(s) // 160 for s in lengths]
    for i in range(4):
        assert torch.all(feats[i, n[i]:] == 0)  # padded frames are zero
        assert torch.all(feats[i, : n[i]].abs().sum(-1) > 0)


def test_frame_helpers():
    assert frame_lengths(torch.tensor([0, 159, 160, 16000]), 160).tolist() == [1, 1, 2, 101]
    assert lengths_to_mask(torch.tensor([0, 2, 3]), 3).tolist() == [
        [False, False, False], [True, True, False], [True, True, True]]


@pytest.mark.parametrize("kind", ["log_mel", "mfcc"])
@pytest.mark.parametrize("normalize", ["none", "utterance", "global"])
@pytest.mark.parametrize("deltas", [0, 1, 2])
def test_padding_invariance(kind, normalize, deltas):
    """A clip alone gives the same features as the same clip padded inside a batch of longer clips."""
    g = torch.Generator().manual_seed(1)
    clips = [torch.randn(n, generator=g) * s for n, s in ((7001, 0.1), (12345, 0.3), (3200, 0.05))]
    front = FrontEnd(FeatureConfig(kind=kind, normalize=normalize, deltas=deltas))
    if normalize == "global":
        dim = front.config.dim
        front.set_statistics(torch.randn(dim, generator=g), torch.rand(dim, generator=g) + 0.5)
    lengths = torch.tensor([len(c) for c in clips])
    batch = torch.zeros(3, int(lengths.max()) + 500)  # extra padding beyond the longest clip, too
    for i, c in enumerate(clips):
        batch[i, : len(c)] = c
    feats, n = front(batch, lengths)
    for i, c in enumerate(clips):
        alone, n_alone = front(c[None], lengths[i : i + 1])
        assert int(n_alone[0]) == int(n[i])
        torch.testing.assert_close(feats[i, : n[i]], alone[0], rtol=1e-5, atol=1e-5)
        assert torch.all(feats[i, n[i]:] == 0)


def test_input_dtype_and_device():
    """float64/int16-scaled input becomes float32; the module works on an explicit CPU device and its
    buffers follow ``.to``."""
    wave = torch.randn(2, 4000, dtype=torch.float64) * 0.1
    lengths = torch.tensor([4000, 3000])
    front = FrontEnd(FeatureConfig()).to(torch.device("cpu"))
    a, _ = front(wave, lengths)
    b, _ = front(wave.float(), lengths)
    assert a.dtype == torch.float32 and torch.equal(a, b)
    assert all(buf.device.type == "cpu" for buf in front.buffers())
    assert a.device.type == "cpu"


def test_state_dict_holds_only_the_normalization_statistics():
    front = FrontEnd(FeatureConfig(kind="mfcc", deltas=1))
    assert sorted(front.state_dict()) == ["mean", "std"]
    assert front.state_dict()["mean"].shape == (26,)


# --------------------------------------------------------------------------- normalization and statistics


def test_global_normalization_uses_the_statistics():
    wave = torch.randn(1, 8000) * 0.1
    lengths = torch.tensor([8000])
    raw, _ = FrontEnd(FeatureConfig(normalize="none"))(wave, lengths)
    front = FrontEnd(FeatureConfig(normalize="global"))
    mean, std = torch.linspace(-50, -10, 40), torch.linspace(1, 10, 40)
    front.set_statistics(mean, std)
    out, _ = front(wave, lengths)
    torch.testing.assert_close(out, (raw - mean) / std)
    front.set_statistics(mean, torch.zeros(40))  # silent bins: std floored to 1e-2
    assert torch.all(front.std == 1e-2) and torch.isfinite(front(wave, lengths)[0]).all()


def test_utterance_normalization_is_per_clip_over_valid_frames():
    g = torch.Generator().manual_seed(2)
    wave = torch.zeros(2, 16000)
    wave[0] = torch.randn(16000, generator=g)
    wave[1, :6000] = torch.randn(6000, generator=g) * 0.01
    feats, n = FrontEnd(FeatureConfig(normalize="utterance"))(wave, torch.tensor([16000, 6000]))
    for i in range(2):
        valid = feats[i, : n[i]]
        assert valid.mean(0).abs().max() < 1e-4
        assert (valid.std(0, unbiased=False) - 1).abs().max() < 1e-3


def test_feature_statistics_use_valid_frames_only():
    g = torch.Generator().manual_seed(3)
    feats = torch.randn(3, 10, 4, generator=g) * torch.tensor([1.0, 2.0, 3.0, 4.0]) + torch.tensor([0.0, 5.0, -5.0, 1.0])
    n = torch.tensor([10, 4, 7])
    for i in range(3):
        feats[i, n[i]:] = 1e6  # garbage in padding must not count
    stats = FeatureStatistics(4)
    stats.update(feats[:2], n[:2])
    stats.update(feats[2:], n[2:])  # accumulates over batches
    valid = torch.cat([feats[i, : n[i]] for i in range(3)]).double()
    mean, std = stats.result()
    assert stats.count == 21
    torch.testing.assert_close(mean, valid.mean(0).float())
    torch.testing.assert_close(std, valid.std(0, unbiased=False).float())


def test_feature_statistics_from_the_front_end_normalize_to_zero_mean():
    """Statistics of a batch's raw features, set as global statistics, normalize that batch to mean 0
    and standard deviation 1 over its valid frames."""
    g = torch.Generator().manual_seed(4)
    wave = torch.randn(3, 9000, generator=g) * torch.tensor([[0.5], [0.05], [0.1]])
    lengths = torch.tensor([9000, 5000, 2000])
    front = FrontEnd(FeatureConfig(kind="mfcc", normalize="global"))
    raw, n = front.raw_features(wave, lengths)
    stats = FeatureStatistics(front.config.dim)
    stats.update(raw, n)
    front.set_statistics(*stats.result())
    out, n = front(wave, lengths)
    valid = out[lengths_to_mask(n, out.shape[1])]
    assert valid.mean(0).abs().max() < 1e-3
    assert (valid.std(0, unbiased=False) - 1).abs().max() < 1e-3


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"kind": "spectrogram"}, "features.kind must be 'log_mel' or 'mfcc'"),
        ({"normalize": "batch"}, "features.normalize must be none, utterance or global"),
        ({"win_ms": 40.0}, "640 samples > n_fft 512"),
        ({"deltas": 3}, "features.deltas must be 0, 1 or 2"),
        ({"deltas": -1}, "features.deltas must be 0, 1 or 2"),
        ({"kind": "mfcc", "n_mfcc": 41, "n_mels": 40}, "features.n_mfcc 41 > n_mels 40"),
    ],
)
def test_config_validation(changes, message):
    config = FeatureConfig(**changes)
    with pytest.raises(ValueError) as err:
        config.validate()
    assert message in str(err.value)
    with pytest.raises(ValueError):
        FrontEnd(config)


def test_valid_configs_pass():
    assert FeatureConfig().validate() == FeatureConfig()
    assert FeatureConfig(kind="log_mel", n_mfcc=80).validate().dim == 40  # n_mfcc only matters for mfcc
    assert FeatureConfig(win_ms=32.0).validate().win_length == 512
