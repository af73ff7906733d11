"""``speech.augment``: time shift, gain, noise at a measured SNR, speed perturbation, SpecAugment, the
noise bank, and reproducibility under ``torch.manual_seed``."""
from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

from speech.audio import load_audio
from speech.augment import (AugmentConfig, SpecAugment, TempoPerturb, WaveformAugment, load_noise_bank, load_rir_bank,
                            seed_everything, telephone_channel)
from speech.features import lengths_to_mask

torch.set_num_threads(1)

RATE = 16000
OFF = dict(time_shift_ms=0.0, gain_db=0.0)  # every piece off; tests switch on what they check


def batch_of(lengths: list[int], seed: int = 0, width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    wave = torch.zeros(len(lengths), width or max(lengths))
    for i, n in enumerate(lengths):
        wave[i, :n] = torch.randn(n, generator=g) * 0.1 + 0.05  # a DC offset: no sample is exactly zero
    return wave, torch.tensor(lengths)


def snr_db(clean: torch.Tensor, noisy: torch.Tensor) -> float:
    return 10 * math.log10(float(clean.square().sum()) / float((noisy - clean).square().sum()))


# --------------------------------------------------------------------------- time shift


def test_time_shift_keeps_length_and_zero_fills():
    torch.manual_seed(0)
    aug = WaveformAugment(AugmentConfig(**{**OFF, "time_shift_ms": 50.0}), RATE)  # up to 800 samples
    wave, lengths = batch_of([16000, 6000, 3000], width=16000)
    out = aug.time_shift(wave, lengths)
    assert out.shape == wave.shape
    seen = set()
    for i, n in enumerate(lengths.tolist()):
        # find the shift: the output is the clip moved by s samples, zeros where nothing came in
        nz = torch.nonzero(out[i]).flatten()
        first, last = int(nz[0]), int(nz[-1])
        s = first if first > 0 else -(n - 1 - last)
        assert abs(s) <= 800
        seen.add(s)
        if s >= 0:
            assert torch.equal(out[i, s:n], wave[i, : n - s]) and torch.all(out[i, :s] == 0)
        else:
            assert torch.equal(out[i, : n + s], wave[i, -s:n]) and torch.all(out[i, n + s : n] == 0)
        assert torch.all(out[i, n:] == 0)  # nothing is shifted into the padding
    assert len(seen) == 3  # each clip draws its own shift


def test_forward_time_shift_leaves_lengths_alone():
    torch.manual_seed(1)
    aug = WaveformAugment(AugmentConfig(**{**OFF, "time_shift_ms": 100.0}), RATE)
    wave, lengths = batch_of([8000, 4000])
    out, out_lengths = aug(wave, lengths)
    assert out.shape == wave.shape and torch.equal(out_lengths, lengths)


# --------------------------------------------------------------------------- gain


def test_gain_scales_each_clip_within_range():
    torch.manual_seed(2)
    aug = WaveformAugment(AugmentConfig(**{**OFF, "gain_db": 6.0}), RATE)
    wave, lengths = batch_of([4000] * 16)
    out, _ = aug(wave, lengths)
    ratios = (out / wave)  # one factor per clip
    factors = ratios[:, 0]
    assert torch.allclose(ratios, factors[:, None].expand_as(ratios), rtol=1e-5)
    gains_db = 20 * torch.log10(factors)
    assert float(gains_db.abs().max()) <= 6.0 + 1e-4
    assert float(gains_db.min()) < -1 and float(gains_db.max()) > 1  # really random, both ways


# --------------------------------------------------------------------------- noise


@pytest.mark.parametrize("target", [0.0, 10.0, 25.0])
def test_noise_is_added_at_the_requested_snr(target):
    """Fixed SNR (min = max), noise with probability 1: the measured SNR over each clip's valid samples
    is the target within 0.5 dB, and the padding stays zero."""
    g = torch.Generator().manual_seed(3)
    noise = torch.randn(100_000, generator=g) * 0.3 + 0.1 * torch.sin(torch.arange(100_000) * 0.05)
    config = AugmentConfig(**OFF, noise_prob=1.0, snr_db_min=target, snr_db_max=target)
    aug = WaveformAugment(config, RATE, noise)
    wave, lengths = batch_of([16000, 9000, 4000], seed=4)
    wave[1] *= 10  # different levels: the noise follows each clip's level
    torch.manual_seed(5)
    out, out_lengths = aug(wave, lengths)
    assert torch.equal(out_lengths, lengths)
    for i, n in enumerate(lengths.tolist()):
        assert snr_db(wave[i, :n], out[i, :n]) == pytest.approx(target, abs=0.5)
        assert torch.all(out[i, n:] == 0)


def test_noise_snr_is_drawn_from_the_range(shared_dataset):
    """Real noise recordings (the Speech Commands background noise) on real speech (FSDD): every clip's
    SNR falls in [snr_db_min, snr_db_max]."""
    noise = load_audio(shared_dataset("background_noise") / "running_tap.wav", RATE)
    speech_clip = load_audio(shared_dataset("fsdd") / "recordings" / "4_yweweler_7.wav", RATE)
    n = len(speech_clip)
    wave = speech_clip[None].repeat(12, 1)
    lengths = torch.full((12,), n)
    aug = WaveformAugment(AugmentConfig(**OFF, noise_prob=1.0, snr_db_min=5.0, snr_db_max=15.0), RATE, noise)
    torch.manual_seed(6)
    out, _ = aug(wave, lengths)
    snrs = [snr_db(wave[i], out[i]) for i in range(12)]
    assert all(5.0 - 0.5 <= s <= 15.0 + 0.5 for s in snrs)
    assert max(snrs) - min(snrs) > 3  # drawn, not fixed


def test_noise_probability_and_silent_clips():
    noise = torch.randn(50_000, generator=torch.Generator().manual_seed(7))
    wave, lengths = batch_of([8000] * 40, seed=8)
    wave[0] = 0.0  # a silent clip (the _silence_ class) gets noise at a random level instead of "SNR"
    aug = WaveformAugment(AugmentConfig(**OFF, noise_prob=0.5, snr_db_min=10, snr_db_max=10), RATE, noise)
    torch.manual_seed(9)
    out = aug.add_noise(wave, lengths)
    changed = [not torch.equal(out[i], wave[i]) for i in range(40)]
    assert 8 <= sum(changed) <= 32  # about half
    torch.manual_seed(9)
    out_all = WaveformAugment(AugmentConfig(**OFF, noise_prob=1.0), RATE, noise).add_noise(wave, lengths)
    assert torch.isfinite(out_all).all()
    assert 0 < float(out_all[0].abs().max()) <= 0.3 * float(noise.abs().max()) + 1e-6
    # a noise bank shorter than the batch is left out
    short = WaveformAugment(AugmentConfig(**OFF, noise_prob=1.0), RATE, torch.ones(100))
    assert torch.equal(short.add_noise(wave, lengths), wave)


def test_load_noise_bank(tmp_path):
    assert load_noise_bank(None, RATE) is None and load_noise_bank("", RATE) is None
    sf.write(str(tmp_path / "a.wav"), np.full(800, 0.25), 8000, subtype="FLOAT")
    (tmp_path / "sub").mkdir()
    sf.write(str(tmp_path / "sub" / "b.wav"), np.linspace(-0.5, 0.1, 3000), RATE, subtype="FLOAT")
    bank = load_noise_bank(str(tmp_path), RATE)
    assert bank.ndim == 1 and len(bank) == 1600 + 3000  # a.wav resampled to 16 kHz
    assert float(bank[:1600].abs().max()) == pytest.approx(1.0, abs=0.02)  # each recording peak-normalized
    assert float(bank[1600:].abs().max()) == pytest.approx(1.0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no noise recordings found"):
        load_noise_bank(str(tmp_path / "empty"), RATE)


# --------------------------------------------------------------------------- reverberation


def test_load_rir_bank_aligns_each_channel_at_its_direct_path(tmp_path, capsys):
    assert load_rir_bank(None, RATE) is None and load_rir_bank("", RATE) is None
    two = np.zeros((4000, 2), dtype=np.float32)  # an 8 kHz measurement of two microphones
    two[1000, 0], two[1200, 0] = 0.8, -0.4  # channel 0: direct path at 125 ms, an echo 25 ms later
    two[1500, 1] = -0.9  # channel 1: direct path at 187.5 ms
    sf.write(str(tmp_path / "two_mics.wav"), two, 8000, subtype="FLOAT")
    (tmp_path / "sub").mkdir()
    one = np.zeros(30000, dtype=np.float32)
    one[10] = 1.0
    sf.write(str(tmp_path / "sub" / "long.wav"), one, RATE, subtype="FLOAT")  # 1.9 s: cut at 1 s
    (tmp_path / "broken.wav").write_bytes(b"RIFF0000WAVEnot really")
    bank = load_rir_bank(str(tmp_path), RATE)
    assert "broken.wav" in capsys.readouterr().err  # named and skipped
    assert bank.shape == (3, RATE)  # every channel a response, each 1 s
    assert torch.allclose(bank.square().sum(1), torch.ones(3), atol=1e-4)  # unit energy
    lead = 40  # 2.5 ms at 16 kHz
    assert [int(r.abs().argmax()) for r in bank] == [10, lead, lead]  # sub/long.wav first; 10 < lead: kept as it is
    echo = bank[1, lead + 380: lead + 420].abs().max() / bank[1, lead]  # the echo 25 ms (400 samples) later
    assert float(echo) == pytest.approx(0.5, abs=0.05)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no room impulse responses found"):
        load_rir_bank(str(tmp_path / "empty"), RATE)


def test_reverb_convolves_with_a_response_of_the_bank():
    wave, lengths = batch_of([8000, 6000])
    rir = torch.zeros(1, 1000)
    rir[0, 0], rir[0, 800] = 1.0, 0.5  # a direct path and one echo 50 ms later
    aug = WaveformAugment(AugmentConfig(**OFF, reverb_prob=1.0), RATE, rirs=rir)
    out, out_lengths = aug(wave, lengths)
    assert torch.equal(out_lengths, lengths) and out.shape == wave.shape
    expected = wave.clone()
    expected[:, 800:] += 0.5 * wave[:, :-800]
    expected = expected * lengths_to_mask(lengths, wave.shape[1])
    expected = expected * (wave.abs().amax(1, keepdim=True) / expected.abs().amax(1, keepdim=True))  # the peak kept
    assert torch.allclose(out, expected, atol=1e-4)
    assert torch.equal(out[1, 6000:], torch.zeros(2000))  # nothing into the padding
    none = WaveformAugment(AugmentConfig(**OFF, reverb_prob=1e-9), RATE, rirs=rir)
    assert torch.equal(none(wave, lengths)[0], wave)


def test_synthetic_reverb_without_a_bank_keeps_the_level_and_adds_a_tail():
    torch.manual_seed(0)
    wave = torch.zeros(1, 16000)
    wave[0, 1000] = 0.5  # a click: its response is the room
    out, _ = WaveformAugment(AugmentConfig(**OFF, reverb_prob=1.0, rt60_min=0.4, rt60_max=0.4), RATE)(wave, torch.tensor([16000]))
    assert float(out.abs().max()) == pytest.approx(0.5)
    tail = out[0, 1000 + 1600: 1000 + 3200].square().sum() / out[0, 1000: 1000 + 1600].square().sum()
    assert 1e-4 < float(tail) < 0.5  # decaying: less energy 0.1-0.2 s after the click than in its first 0.1 s


# --------------------------------------------------------------------------- speed


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_changes_length_by_the_factor(factor):
    torch.manual_seed(10)
    aug = WaveformAugment(AugmentConfig(**OFF, speed_prob=1.0, speeds=(factor,)), RATE)
    t = torch.arange(16000) / RATE
    tone = 0.5 * torch.sin(2 * math.pi * 440 * t)
    wave = torch.zeros(2, 16000)
    wave[0] = tone
    wave[1, :8000] = tone[:8000]
    out, lengths = aug(wave, torch.tensor([16000, 8000]))
    expected = [math.ceil(16000 / factor), math.ceil(8000 / factor)]
    assert lengths.tolist() == expected and out.shape[1] == expected[0]
    # faster speech is shorter and higher: 440 Hz moves to 440 * factor
    x = out[0].double().numpy()
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    assert np.argmax(spectrum) * RATE / len(x) == pytest.approx(440 * factor, abs=2.0)
    # a padded clip comes out as it would alone, with zero padding after its new length
    alone = AF.resample(tone[:8000], round(RATE * factor), RATE)
    assert len(alone) == expected[1]
    torch.testing.assert_close(out[1, : expected[1]], alone, rtol=0, atol=1e-5)
    assert torch.all(out[1, expected[1]:] == 0)


def test_speed_probability_zero_never_resamples():
    aug = WaveformAugment(AugmentConfig(**OFF, speed_prob=0.0, speeds=(0.5,)), RATE)
    wave, lengths = batch_of([4000, 2000])
    out, out_lengths = aug(wave, lengths)
    assert torch.equal(out, wave) and torch.equal(out_lengths, lengths)


# --------------------------------------------------------------------------- SpecAugment


def test_spec_augment_masks_with_zeros():
    torch.manual_seed(11)
    feats = torch.randn(4, 60, 40) + 5.0  # no zeros before masking
    out = SpecAugment(AugmentConfig(freq_masks=2, freq_mask_width=8, time_masks=2, time_mask_width=10))(feats)
    assert out.shape == feats.shape
    kept = out == feats
    assert torch.all(kept | (out == 0))  # every value is either unchanged or zeroed
    for i in range(4):
        zero_bins = (out[i] == 0).all(0)  # whole frequency bins
        zero_frames = (out[i] == 0).all(1)  # whole frames
        assert int(zero_bins.sum()) <= 2 * 8 and int(zero_frames.sum()) <= 2 * 10
        # nothing else is zeroed: each zero lies in a masked bin or frame
        assert torch.equal(out[i] == 0, zero_bins[None, :] | zero_frames[:, None])
    assert int((out == 0).sum()) > 0


def test_spec_augment_time_mask_width_limited_by_clip_length():
    torch.manual_seed(12)
    feats = torch.randn(8, 10, 5) + 5.0
    out = SpecAugment(AugmentConfig(time_masks=1, time_mask_width=50))(feats)
    for i in range(8):
        assert int((out[i] == 0).all(1).sum()) <= 2  # at most a fifth of 10 frames


def test_spec_augment_off_is_identity():
    feats = torch.randn(2, 7, 3)
    assert torch.equal(SpecAugment(AugmentConfig())(feats), feats)


# --------------------------------------------------------------------------- tempo perturbation


def test_tempo_changes_duration_not_spectrum():
    # frame t, bin d holds t + 100 d: resampling in time must give t * rate in each bin, bins kept apart
    lengths = torch.tensor([80, 50, 20])
    feats = (torch.arange(80.0)[:, None] + 100 * torch.arange(4.0)[None, :]).repeat(3, 1, 1)
    feats = feats.masked_fill(~lengths_to_mask(lengths, 80).unsqueeze(-1), 0.0)
    for rate in (0.5, 0.8, 1.25, 2.0):
        out, new_lengths = TempoPerturb(AugmentConfig(tempo_prob=1.0, tempo_min=rate, tempo_max=rate))(feats, lengths)
        assert new_lengths.tolist() == [round(n / rate) for n in lengths.tolist()]
        assert out.shape == (3, int(new_lengths.max()), 4)
        for b in range(3):
            n = int(new_lengths[b])
            expected = (torch.arange(n) * rate).clamp(max=float(lengths[b] - 1))
            assert torch.allclose(out[b, :n], expected[:, None] + 100 * torch.arange(4.0)[None, :], atol=1e-4)
            assert torch.all(out[b, n:] == 0)  # padding stays zero


def test_tempo_draws_per_clip_within_range_and_off_is_identity():
    torch.manual_seed(21)
    lengths = torch.full((64,), 100)
    feats = torch.randn(64, 100, 3)
    out, new_lengths = TempoPerturb(AugmentConfig(tempo_prob=0.5, tempo_min=1.1, tempo_max=1.5))(feats, lengths)
    changed = new_lengths != 100  # every drawn rate shortens the clip: unchanged ones were not drawn
    assert 16 < int(changed.sum()) < 48  # about half the clips
    assert int(new_lengths.min()) >= round(100 / 1.5) and int(new_lengths.max()) == 100
    assert len(set(new_lengths[changed].tolist())) > 5  # a rate per clip, not one per batch
    unchanged = ~changed
    assert torch.equal(out[unchanged, :100], feats[unchanged])
    same, same_lengths = TempoPerturb(AugmentConfig())(feats, lengths)
    assert same is feats and same_lengths is lengths


# --------------------------------------------------------------------------- reproducibility


def test_everything_is_reproducible_under_manual_seed():
    noise = torch.randn(60_000, generator=torch.Generator().manual_seed(13))
    config = AugmentConfig(time_shift_ms=100.0, gain_db=6.0, noise_prob=0.7, speed_prob=0.5, speeds=(0.9, 1.1),
                           freq_masks=2, time_masks=2)
    aug, spec = WaveformAugment(config, RATE, noise), SpecAugment(config)
    wave, lengths = batch_of([16000, 12000, 5000], seed=14)
    feats = torch.randn(3, 50, 40)

    def run(seed: int):
        torch.manual_seed(seed)
        results = []
        for _ in range(3):  # several steps: the generator state carries on
            w, n = aug(wave, lengths)
            results.append((w, n, spec(feats)))
        return results

    first, second, other = run(15), run(15), run(16)
    for (w1, n1, f1), (w2, n2, f2) in zip(first, second):
        assert torch.equal(w1, w2) and torch.equal(n1, n2) and torch.equal(f1, f2)
    assert any(w1.shape != w3.shape or not torch.equal(w1, w3) for (w1, _, _), (w3, _, _) in zip(first, other))
    # padding stays zero through the whole chain
    for w, n, _ in first:
        assert torch.all(w[~lengths_to_mask(n, w.shape[1])] == 0)


def test_seed_everything_seeds_torch():
    seed_everything(123)
    a = torch.rand(3)
    seed_everything(123)
    assert torch.equal(torch.rand(3), a)


# --------------------------------------------------------------------------- vocal-tract-length perturbation


def test_vtlp_warps_move_a_formant_by_the_factor():
    """A 1 kHz tone: warping the filter bank by alpha moves its peak to the mel band of alpha * 1 kHz."""
    from speech.features import FeatureConfig, FrontEnd

    front = FrontEnd(FeatureConfig(n_mels=80, normalize="none"))
    t = torch.arange(RATE) / RATE
    tone = torch.sin(2 * math.pi * 1000 * t).repeat(3, 1)
    lengths = torch.full((3,), RATE)
    warps = torch.tensor([1.0, 0.9, 1.1])
    feats, _ = front(tone, lengths, warps)
    peaks = feats.mean(1).argmax(1)
    plain, _ = front(tone[:1], lengths[:1])
    assert int(peaks[0]) == int(plain.mean(1).argmax(1)[0])  # alpha = 1 is the unwarped front end
    centres = torch.tensor(librosa_mel_centres(80))
    for i, alpha in enumerate(warps.tolist()):
        expected = int((centres - 1000 * alpha).abs().argmin())
        assert abs(int(peaks[i]) - expected) <= 1, (alpha, int(peaks[i]), expected)
    assert peaks[1] < peaks[0] < peaks[2]


def librosa_mel_centres(n_mels: int) -> list[float]:
    librosa = pytest.importorskip("librosa")
    return librosa.mel_frequencies(n_mels + 2, fmin=0.0, fmax=RATE / 2)[1:-1].tolist()


def test_vtlp_warps_are_drawn_in_range_and_off_by_default():
    assert WaveformAugment(AugmentConfig(**OFF), RATE).vtlp_warps(8, "cpu") is None
    torch.manual_seed(0)
    warps = WaveformAugment(AugmentConfig(**OFF, vtlp_prob=0.5, vtlp_min=0.9, vtlp_max=1.1), RATE).vtlp_warps(4000, "cpu")
    warped = warps != 1.0
    assert 0.45 < warped.float().mean() < 0.55
    assert warps.min() >= 0.9 and warps.max() <= 1.1 and warps[warped].std() > 0.05


# --------------------------------------------------------------------------- cropping a word's first/last sounds


def test_crop_silences_only_the_ends_of_the_active_span():
    """A tone from 0.25 s to 0.75 s over a -60 dB noise floor: at most ``crop_max`` of the tone is cut at
    each end; the middle and the background noise around the word are untouched; with ``crop_prob=0``
    nothing changes."""
    torch.manual_seed(0)
    wave = 1e-3 * torch.randn(16, RATE)
    wave[:, 4000:12000] += torch.sin(torch.arange(8000) / 5.0) + 0.5
    lengths = torch.full((16,), RATE)
    out, _ = WaveformAugment(AugmentConfig(**OFF, crop_prob=1.0, crop_max=0.25), RATE)(wave, lengths)
    zeroed = out == 0
    assert torch.equal(out[:, :4000], wave[:, :4000]) and torch.equal(out[:, 12000:], wave[:, 12000:])
    assert not zeroed[:, :4000].any() and not zeroed[:, 12000:].any()
    kept = ~zeroed[:, 4000:12000]
    starts = 4000 + kept.float().argmax(1)
    ends = 12000 - kept.flip(1).float().argmax(1)
    assert (starts <= 4000 + 2000 + 160).all() and (ends >= 12000 - 2000 - 160).all()
    assert starts.unique().numel() > 4 and zeroed.any(1).all()  # every clip cut, a different cut per clip
    middle = slice(6200, 9800)
    assert torch.equal(out[:, middle], wave[:, middle])
    same, _ = WaveformAugment(AugmentConfig(**OFF, crop_prob=0.0), RATE)(wave, lengths)
    assert torch.equal(same, wave)


# --------------------------------------------------------------------------- band limit


def test_band_limit_removes_what_an_8khz_channel_cannot_carry(shared_dataset):
    """Real 16 kHz speech through the 8 kHz channel: nothing left above 4 kHz, the band below kept; clips
    not drawn are untouched; off by default."""
    clip = load_audio(shared_dataset("speech_commands_v2_test_dev") / "yes" / sorted(
        p.name for p in (shared_dataset("speech_commands_v2_test_dev") / "yes").glob("*.wav"))[0], RATE)
    wave = clip[None].repeat(8, 1)
    lengths = torch.full((8,), len(clip))
    aug = WaveformAugment(AugmentConfig(**OFF, band_limit_prob=0.5), RATE)
    torch.manual_seed(3)
    out, _ = aug(wave, lengths)
    assert out.shape == wave.shape
    changed = [not torch.equal(out[i], wave[i]) for i in range(8)]
    assert 0 < sum(changed) < 8
    spectrum = lambda x: torch.fft.rfft(x).abs().square()  # noqa: E731
    freqs = torch.fft.rfftfreq(len(clip), 1 / RATE)
    for i in range(8):
        s, ref = spectrum(out[i]), spectrum(wave[i])
        high, low = freqs > 4300, (freqs > 300) & (freqs < 3500)
        if changed[i]:
            assert float(s[high].sum()) < 1e-3 * float(ref[high].sum())
            assert abs(float(s[low].sum()) / float(ref[low].sum()) - 1) < 0.05
        else:
            assert torch.equal(out[i], wave[i])
    assert AugmentConfig().band_limit_prob == 0.0


# --------------------------------------------------------------------------- telephone line


def test_telephone_line_keeps_the_voice_band_only(shared_dataset):
    """Real 16 kHz speech down the G.711 line: nothing above 4 kHz (the line runs at 8 kHz), little under
    150 Hz, the voice band mostly kept; clips not drawn untouched; the padding stays silent; off by default."""
    folder = shared_dataset("speech_commands_v2_test_dev") / "yes"
    clip = load_audio(folder / sorted(p.name for p in folder.glob("*.wav"))[0], RATE)
    n = len(clip) - 2000
    wave = clip[None].repeat(8, 1)
    wave[:, n:] = 0.0
    lengths = torch.full((8,), n)
    torch.manual_seed(3)
    out, _ = WaveformAugment(AugmentConfig(**OFF, telephone_prob=0.5), RATE)(wave, lengths)
    assert out.shape == wave.shape
    changed = [not torch.equal(out[i], wave[i]) for i in range(8)]
    assert 0 < sum(changed) < 8
    freqs = torch.fft.rfftfreq(n, 1 / RATE)
    for i in range(8):
        if not changed[i]:
            assert torch.equal(out[i], wave[i])
            continue
        s, ref = torch.fft.rfft(out[i, :n]).abs().square(), torch.fft.rfft(wave[i, :n]).abs().square()
        band = lambda lo, hi: float(s[(freqs > lo) & (freqs < hi)].sum()) / float(ref[(freqs > lo) & (freqs < hi)].sum())  # noqa: E731
        assert band(4300, 8000) < 1e-3
        assert 0.5 < band(600, 3000) < 1.5
        assert band(0, 150) < 0.2 * band(600, 3000)  # the filters' 24 dB an octave, over the codec's noise
        assert torch.all(out[i, n:] == 0)
    assert AugmentConfig().telephone_prob == 0.0


def test_telephone_line_quantizes_to_256_mu_law_steps_and_is_deterministic():
    """At the line's own rate (8 kHz, FSDD's) a clip leaves as at most 256 levels (8-bit mu-law, scaled to
    its peak); the same input gives the same output (a test copy of a data set is reproducible)."""
    wave, _ = batch_of([8000, 8000], seed=4)
    out = telephone_channel(wave, 8000)
    assert out.shape == wave.shape
    for row in out:
        assert 2 < len(torch.unique(row)) <= 256
    assert torch.equal(out, telephone_channel(wave, 8000))
    assert snr_db(AF.highpass_biquad(AF.highpass_biquad(wave, 8000, 300.0), 8000, 300.0), out) < 40


def test_the_clean_channel_is_the_clip_as_augmented_without_the_narrow_channels():
    """``with_clean_channel`` (for teachers that hear a clip on the clean channel, ``trainer.distill_clean_channel``):
    ``forward``'s clips for the same seed, and beside them the same clips with the same shift, noise and gain
    but without the 8 kHz band limit or the telephone line; equal to the augmented clip where neither was drawn."""
    wave, lengths = batch_of([16000, 12000, 16000, 9000, 16000, 14000, 16000, 15000], seed=5)
    noise = torch.randn(48000) * 0.05
    settings = dict(time_shift_ms=50.0, gain_db=6.0, noise_prob=1.0, snr_db_min=5.0, snr_db_max=15.0)
    narrow = WaveformAugment(AugmentConfig(**settings, band_limit_prob=0.4, telephone_prob=0.4), RATE, noise)
    torch.manual_seed(1)
    out, out_lengths, clean = narrow.with_clean_channel(wave, lengths)
    torch.manual_seed(1)
    again, _ = narrow(wave, lengths)
    assert torch.equal(out, again)
    # the same random draws with channels that are never drawn (probabilities too small to hit): every clip's
    # clean channel, the noise aside on band-limited clips (its level follows the narrower clip's power)
    torch.manual_seed(1)
    wide, _ = WaveformAugment(AugmentConfig(**settings, band_limit_prob=1e-12, telephone_prob=1e-12), RATE, noise)(wave, lengths)
    mask = lengths_to_mask(out_lengths, wave.shape[1]).to(wave.dtype)
    def high(x: torch.Tensor, above: float = 4300.0) -> float:  # energy above a frequency
        return float(torch.fft.rfft(x).abs().square()[torch.fft.rfftfreq(x.shape[-1], 1 / RATE) > above].sum())

    kinds = set()
    for i in range(len(out)):
        n = int(out_lengths[i])
        if torch.equal(out[i], clean[i]):
            kinds.add("none")
            assert torch.allclose(clean[i], wide[i], atol=1e-6)
        elif high(out[i, :n]) < 1e-3 * high(clean[i, :n]):  # narrowed: nothing above 4 kHz, the clean one full band
            kinds.add("narrow")
            assert high(clean[i, :n]) == pytest.approx(high(wide[i, :n]), rel=0.3)
            if torch.allclose(clean[i], wide[i], atol=1e-6):  # the line alone: down the line it is the augmented clip
                kinds.add("line")
                assert snr_db(out[i], telephone_channel(clean[i:i + 1], RATE)[0] * mask[i]) > 40  # mu-law rounding aside
        else:  # band-limited before the noise: the same noise, so the two differ only where the limit cuts
            kinds.add("band")
            diff = clean[i, :n] - out[i, :n]
            assert high(diff, above=3500.0) > 0.95 * high(diff, above=0.0)  # (the resampler's roll-off: 3.5-4 kHz)
    assert kinds >= {"none", "narrow", "line", "band"}
