"""Batch augmentation, each piece switchable in ``conf/augment``: random time shift, gain, background
noise at a random SNR, speed perturbation (on waveforms), vocal-tract-length perturbation (a per-clip warp
of the mel filter bank, drawn by ``vtlp_warps`` and applied by the front end), and, on features, tempo
perturbation (speaking rate without pitch) and SpecAugment.

Everything works on a padded batch ``(batch, samples)`` + ``lengths`` at once, on the batch's device.
"""
from __future__ import annotations

import os
import random
import sys
from dataclasses import dataclass

import torch
import torchaudio.functional as AF
from torch import nn

from speech.features import lengths_to_mask


@dataclass
class AugmentConfig:
    """Probabilities/ranges; 0 switches a piece off. ``noise_dir``: folder of noise recordings.
    ``reverb_prob``: convolve with a room impulse response: one of the recordings in ``rir_dir`` (a folder of
    measured or simulated responses, e.g. OpenSLR 26/28, or several folders joined by commas: see
    :func:`load_rir_bank`), or, without one, a synthetic response (exponentially decaying noise, RT60 drawn
    from ``rt60_min``..``rt60_max`` seconds). ``vtlp_prob``: warp the frequency axis of a clip's filter bank
    by a factor drawn uniformly from ``vtlp_min``..``vtlp_max`` (a different vocal-tract length).
    ``crop_prob``: cut up to ``crop_max`` of the word's active span from its start and from its end (a
    recording that clips a word's first or last sound, as many real command clips do).
    ``tempo_prob``: change a clip's speaking rate, not its pitch, by a factor drawn uniformly from
    ``tempo_min``..``tempo_max`` (> 1 is faster: fewer frames), resampling its feature frames in time.
    ``band_limit_prob``: pass a clip through a narrower channel, down to one of ``band_limit_rates`` Hz and back
    (telephone and 8 kHz recordings, e.g. FSDD: nothing above half that rate), before the noise is added.
    ``telephone_prob``: pass a clip, with its noise, through a G.711 telephone line (``telephone_channel``): 8 kHz, the
    300-3,400 Hz voice band (second-order high- and low-pass filters, each applied twice), 8-bit mu-law."""

    time_shift_ms: float = 100.0
    gain_db: float = 6.0
    noise_dir: str | None = None
    noise_prob: float = 0.0
    snr_db_min: float = 0.0
    snr_db_max: float = 20.0
    speed_prob: float = 0.0
    speeds: tuple[float, ...] = (0.9, 1.1)
    reverb_prob: float = 0.0
    rir_dir: str | None = None
    rt60_min: float = 0.15
    rt60_max: float = 0.8
    crop_prob: float = 0.0
    crop_max: float = 0.25
    vtlp_prob: float = 0.0
    vtlp_min: float = 0.9
    vtlp_max: float = 1.1
    tempo_prob: float = 0.0
    tempo_min: float = 0.8
    tempo_max: float = 1.25
    band_limit_prob: float = 0.0
    band_limit_rates: tuple[int, ...] = (8000,)
    telephone_prob: float = 0.0
    freq_masks: int = 0
    freq_mask_width: int = 8
    time_masks: int = 0
    time_mask_width: int = 10


def load_noise_bank(noise_dir: str | None, sample_rate: int) -> torch.Tensor | None:
    """All noise recordings in ``noise_dir`` (one folder, or several joined by commas) concatenated into
    one 1-D tensor, each recording peak-normalized (or ``None``)."""
    if not noise_dir:
        return None
    from speech.audio import find_audio_files, load_audio

    folders = [folder.strip() for folder in noise_dir.split(",") if folder.strip()]
    for folder in folders:
        if not os.path.isdir(folder) and len(folders) > 1:
            print(f"note: augment.noise_dir: {folder}: no such folder; using the others", file=sys.stderr)
    files = [f for folder in folders if os.path.isdir(folder) or len(folders) == 1 for f in find_audio_files(folder)]
    if not files:
        raise ValueError(f"{noise_dir}: no noise recordings found (augment.noise_dir)")
    clips = [load_audio(f, sample_rate) for f in files]
    return torch.cat([c / c.abs().max().clamp(min=1e-4) for c in clips])


def load_rir_bank(rir_dir: str | None, sample_rate: int, max_seconds: float = 1.0,
                  lead_ms: float = 2.5) -> torch.Tensor | None:
    """Room impulse responses from the recordings in ``rir_dir`` (one folder, or several joined by commas),
    as ``(responses, samples)`` at ``sample_rate`` (or ``None`` without a folder). Every channel of a file is
    a response of its own (a multi-microphone measurement holds one per microphone; averaging them would
    smear the room). Each starts ``lead_ms`` before its direct path (its largest peak), so reverberation
    does not move the word in time, is cut at ``max_seconds`` and scaled to unit energy. A file that cannot
    be read is named on stderr and skipped; a folder with no responses at all is an error."""
    if not rir_dir:
        return None
    return load_rir_bank_with_sources(rir_dir, sample_rate, max_seconds, lead_ms)[0]


def load_rir_bank_with_sources(rir_dir: str, sample_rate: int, max_seconds: float = 1.0,
                               lead_ms: float = 2.5) -> tuple[torch.Tensor, list[tuple[str, int]]]:
    """:func:`load_rir_bank`, with the ``(file, channel)`` each response of the bank came from."""
    from speech.audio import AudioError, find_audio_files, load_audio_native, resample

    folders = [folder.strip() for folder in rir_dir.split(",") if folder.strip()]
    files = [f for folder in folders if os.path.isdir(folder) for f in find_audio_files(folder)]
    for folder in folders:
        if not os.path.isdir(folder):
            print(f"note: augment.rir_dir: {folder}: no such folder", file=sys.stderr)
    n = int(round(max_seconds * sample_rate))
    lead = int(round(lead_ms * sample_rate / 1000))
    responses, sources = [], []
    for path in files:
        try:
            data, rate = load_audio_native(path, max_duration=None, mono=False)
        except AudioError as err:
            print(f"note: augment.rir_dir: skipped {err}", file=sys.stderr)
            continue
        for index, channel in enumerate(torch.from_numpy(data)):
            if rate != sample_rate:
                channel = resample(channel, rate, sample_rate)
            peak = int(channel.abs().argmax())
            rir = channel[max(0, peak - lead): max(0, peak - lead) + n]
            energy = rir.square().sum().sqrt()
            if energy > 1e-8:
                responses.append(torch.nn.functional.pad(rir / energy, (0, n - rir.numel())))
                sources.append((str(path), index))
    if not responses:
        raise ValueError(f"{rir_dir}: no room impulse responses found (augment.rir_dir)")
    return torch.stack(responses), sources


class WaveformAugment(nn.Module):
    """Augment ``(batch, samples)`` + ``lengths``; returns new ``(waveform, lengths)``.

    Random draws come from torch's global generator, so seeding (and resuming its state) reproduces them.
    """

    def __init__(self, config: AugmentConfig, sample_rate: int, noise: torch.Tensor | None = None,
                 rirs: torch.Tensor | None = None):
        super().__init__()
        self.config, self.sample_rate = config, sample_rate
        self.register_buffer("noise", noise if noise is not None else torch.zeros(0), persistent=False)
        self.register_buffer("rirs", rirs if rirs is not None else torch.zeros(0, 0), persistent=False)

    @classmethod
    def from_config(cls, config: AugmentConfig, sample_rate: int) -> "WaveformAugment":
        """The augmenter with its banks loaded: the noise of ``noise_dir`` and, when reverberation is on,
        the rooms of ``rir_dir``. Raises ValueError for a folder with nothing usable in it."""
        noise = load_noise_bank(config.noise_dir, sample_rate)
        rirs = load_rir_bank(config.rir_dir, sample_rate) if config.reverb_prob > 0 else None
        return cls(config, sample_rate, noise, rirs)

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        wave, lengths, _ = self.with_clean_channel(wave, lengths)
        return wave, lengths

    def with_clean_channel(self, wave: torch.Tensor, lengths: torch.Tensor
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """As :meth:`forward`, and the same clips without the channel (``band_limit_prob``,
        ``telephone_prob``): ``(waveform, lengths, clean_channel)``, ``clean_channel`` ``(batch, samples)``
        the clip with the same shift, room, noise and gain but neither narrower channel; equal to
        ``waveform`` for every clip no channel was drawn for. For teachers that hear a clip on the clean
        channel while the student learns it on the narrow one (``trainer.distill_clean_channel``)."""
        c = self.config
        if c.crop_prob > 0:
            wave = self.crop(wave, lengths)
        if c.speed_prob > 0 and torch.rand(()) < c.speed_prob:
            wave, lengths = self.speed(wave, lengths)
        if c.time_shift_ms > 0:
            wave = self.time_shift(wave, lengths)
        if c.reverb_prob > 0:
            wave = self.reverb(wave, lengths)
        clean = wave
        if c.band_limit_prob > 0:
            wave = self.band_limit(wave)
        if c.noise_prob > 0 and self.noise.numel() > 0:
            noisy = self.add_noise(wave, lengths)
            clean = noisy if clean is wave else clean + (noisy - wave)  # the same noise on the clean channel
            wave = noisy
        if c.telephone_prob > 0:
            wave = self.telephone(wave, lengths)
        if c.gain_db > 0:
            gain_db = (torch.rand(wave.shape[0], 1, device=wave.device) * 2 - 1) * c.gain_db
            gain = torch.pow(10.0, gain_db / 20)
            wave, clean = wave * gain, clean * gain
        return wave, lengths, clean

    def crop(self, wave: torch.Tensor, lengths: torch.Tensor, frame: int = 160, below_peak_db: float = 40.0) -> torch.Tensor:
        """Silence a random part of each clip's first and last sounds (with ``crop_prob``):
        ``wave (batch, samples)``, ``lengths (batch,)`` -> ``(batch, samples)``. The active span is the run
        of ``frame``-sample frames within ``below_peak_db`` of the clip's loudest frame; up to ``crop_max``
        of it is cut at each end. Only the cut parts of the span are zeroed (the background before and
        after the word stays); noise added later fills them."""
        c = self.config
        batch, samples = wave.shape
        n = samples // frame
        if n < 2:
            return wave
        mask = lengths_to_mask(lengths, samples).to(wave.dtype)
        energy = (wave[:, : n * frame] * mask[:, : n * frame]).reshape(batch, n, frame).square().mean(-1)
        active = energy > energy.amax(1, keepdim=True) * 10 ** (-below_peak_db / 10)
        steps = torch.arange(n, device=wave.device)
        first = torch.where(active, steps, n).amin(1)
        last = torch.where(active, steps, -1).amax(1)
        span = (last - first + 1).clamp(min=0).to(wave.dtype)
        cut_head = (torch.rand(batch, device=wave.device) * c.crop_max * span).floor().long()
        cut_tail = (torch.rand(batch, device=wave.device) * c.crop_max * span).floor().long()
        start, end = (first + cut_head) * frame, (last + 1 - cut_tail) * frame
        positions = torch.arange(samples, device=wave.device)[None, :]
        span_start, span_end = first * frame, (last + 1) * frame
        cut = (((positions >= span_start[:, None]) & (positions < start[:, None]))
               | ((positions >= end[:, None]) & (positions < span_end[:, None])))
        apply = (torch.rand(batch, device=wave.device) < c.crop_prob) & (last >= first)
        return torch.where(apply[:, None] & cut, torch.zeros_like(wave), wave)

    def vtlp_warps(self, batch: int, device: torch.device | str) -> torch.Tensor | None:
        """Per-clip frequency-warp factors ``(batch,)`` for ``FrontEnd(..., warp=)`` (1.0 = unwarped),
        or ``None`` when VTLP is off."""
        c = self.config
        if c.vtlp_prob <= 0:
            return None
        alpha = c.vtlp_min + torch.rand(batch, device=device) * (c.vtlp_max - c.vtlp_min)
        apply = torch.rand(batch, device=device) < c.vtlp_prob
        return torch.where(apply, alpha, torch.ones_like(alpha))

    def speed(self, wave: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Resample the whole batch by one factor drawn from ``speeds`` (faster = shorter, higher pitch)."""
        speeds = self.config.speeds
        factor = speeds[int(torch.randint(len(speeds), ()))]
        orig, new = int(round(self.sample_rate * factor)), self.sample_rate
        g = torch.gcd(torch.tensor(orig), torch.tensor(new)).item()
        wave = AF.resample(wave, orig // g, new // g)
        # torchaudio gives ceil(n * new / orig) samples for n; the filter's tail past that is zeroed
        lengths = torch.div(lengths * new + orig - 1, orig, rounding_mode="floor").clamp(max=wave.shape[1])
        return wave * lengths_to_mask(lengths, wave.shape[1]), lengths

    def time_shift(self, wave: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Shift each clip by up to ``time_shift_ms`` either way within its own length (zeros fill in)."""
        max_shift = int(self.sample_rate * self.config.time_shift_ms / 1000)
        shifts = torch.randint(-max_shift, max_shift + 1, (wave.shape[0],), device=wave.device)
        steps = torch.arange(wave.shape[1], device=wave.device)[None, :]
        source = steps - shifts[:, None]
        valid = (source >= 0) & (source < lengths[:, None]) & (steps < lengths[:, None])  # nothing into the padding
        shifted = wave.gather(1, source.clamp(0, wave.shape[1] - 1))
        return shifted * valid

    def reverb(self, wave: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Convolve each clip (with ``reverb_prob``) with a room impulse response: a random one of the bank
        (``rirs``, from ``rir_dir``), or a synthetic one (a direct path plus exponentially decaying Gaussian
        noise); the level is kept and the tail cut at the clip's end."""
        c = self.config
        batch, samples = wave.shape
        if self.rirs.numel() > 0:
            rir = self.rirs[torch.randint(self.rirs.shape[0], (batch,), device=wave.device)].to(wave.dtype)
        else:
            n = int(self.sample_rate * c.rt60_max)
            t = torch.arange(n, device=wave.device, dtype=wave.dtype)[None, :] / self.sample_rate
            rt60 = c.rt60_min + torch.rand(batch, 1, device=wave.device) * (c.rt60_max - c.rt60_min)
            rir = torch.randn(batch, n, device=wave.device) * torch.exp(-6.9 * t / rt60)  # -60 dB at rt60
            rir[:, 0] = 1.0
            rir = rir / rir.norm(dim=1, keepdim=True)
        wet = reverberate(wave, lengths, rir)
        apply = (torch.rand(batch, 1, device=wave.device) < c.reverb_prob).to(wave.dtype)
        return apply * wet + (1 - apply) * wave

    def band_limit(self, wave: torch.Tensor) -> torch.Tensor:
        """Resample the chosen clips (each with ``band_limit_prob``) down to one of ``band_limit_rates``
        (one rate per batch) and back: ``(batch, samples)`` -> ``(batch, samples)``."""
        c = self.config
        apply = torch.rand(wave.shape[0], device=wave.device) < c.band_limit_prob
        rate = int(c.band_limit_rates[int(torch.randint(len(c.band_limit_rates), ()))])
        if not bool(apply.any()) or rate >= self.sample_rate:
            return wave
        narrow = AF.resample(AF.resample(wave[apply], self.sample_rate, rate), rate, self.sample_rate)
        out = wave.clone()
        n = min(narrow.shape[1], wave.shape[1])
        out[apply] = torch.nn.functional.pad(narrow[:, :n], (0, wave.shape[1] - n))
        return out

    def add_noise(self, wave: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Mix a random stretch of the noise bank into each clip (with ``noise_prob``) at a random SNR."""
        c = self.config
        batch, samples = wave.shape
        if self.noise.numel() <= samples:
            return wave
        starts = torch.randint(0, self.noise.numel() - samples, (batch,), device=wave.device)
        index = starts[:, None] + torch.arange(samples, device=wave.device)[None, :]
        noise = self.noise[index]
        mask = lengths_to_mask(lengths, samples).to(wave.dtype)
        count = lengths.clamp(min=1).to(wave.dtype)
        signal_power = (wave.square() * mask).sum(1) / count
        noise_power = (noise.square() * mask).sum(1) / count
        snr_db = c.snr_db_min + torch.rand(batch, device=wave.device) * (c.snr_db_max - c.snr_db_min)
        scale = torch.sqrt(signal_power.clamp(min=1e-8) / (noise_power.clamp(min=1e-8) * torch.pow(10.0, snr_db / 10)))
        # a silent clip (the _silence_ class) gets the noise at a random level instead
        silent = signal_power < 1e-6
        scale = torch.where(silent, torch.rand(batch, device=wave.device) * 0.3, scale)
        apply = (torch.rand(batch, device=wave.device) < c.noise_prob).to(wave.dtype)
        return wave + (apply * scale)[:, None] * noise * mask

    def telephone(self, wave: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The chosen clips (each with ``telephone_prob``) through :func:`telephone_channel`:
        ``(batch, samples)`` -> ``(batch, samples)``, nothing written into the padding."""
        apply = torch.rand(wave.shape[0], device=wave.device) < self.config.telephone_prob
        if not bool(apply.any()):
            return wave
        out = wave.clone()
        mask = lengths_to_mask(lengths[apply], wave.shape[1]).to(wave.dtype)
        out[apply] = telephone_channel(wave[apply], self.sample_rate) * mask
        return out


def reverberate(wave: torch.Tensor, lengths: torch.Tensor, rir: torch.Tensor) -> torch.Tensor:
    """Each clip convolved with its room's impulse response: ``wave (batch, samples)``, ``lengths (batch,)``,
    ``rir (batch, taps)`` -> ``(batch, samples)``, the reverberant tail cut at the clip's end (nothing
    written into the padding) and each clip's peak level kept."""
    samples = wave.shape[1]
    wet = AF.fftconvolve(wave, rir)[:, :samples] * lengths_to_mask(lengths, samples).to(wave.dtype)
    return wet * (wave.abs().amax(1, keepdim=True) / wet.abs().amax(1, keepdim=True).clamp(min=1e-8))


def telephone_channel(wave: torch.Tensor, sample_rate: int, low_hz: float = 300.0, high_hz: float = 3400.0,
                      levels: int = 256, line_rate: int = 8000) -> torch.Tensor:
    """A G.711 telephone line, deterministic: ``(batch, samples)`` -> ``(batch, samples)``. Audio above
    ``line_rate`` is resampled to it (and back at the end: nothing above ``line_rate / 2`` survives); the
    voice band ``low_hz``..``high_hz`` (torchaudio's second-order high- and low-pass biquads, each run twice:
    24 dB per octave); then ``levels``-step mu-law quantization at the line's rate, of each clip scaled to
    its peak (the codec's 8 bits spent on the signal's range, as a line's automatic gain does) and scaled back."""
    rate = min(sample_rate, line_rate)
    x = AF.resample(wave, sample_rate, rate) if rate != sample_rate else wave
    for _ in range(2):
        x = AF.highpass_biquad(x, rate, low_hz)
        if high_hz < rate / 2:
            x = AF.lowpass_biquad(x, rate, high_hz)
    peak = x.abs().amax(-1, keepdim=True).clamp(min=1e-6)
    x = AF.mu_law_decoding(AF.mu_law_encoding((x / peak).clamp(-1, 1), levels), levels).to(wave.dtype) * peak
    if rate != sample_rate:
        x = AF.resample(x, rate, sample_rate)
        n = wave.shape[-1]
        x = torch.nn.functional.pad(x[..., :n], (0, max(0, n - x.shape[-1])))
    return x


class TempoPerturb(nn.Module):
    """Per-clip speaking-rate change on features: ``(feats (B, T, D), lengths (B,))`` ->
    ``(feats (B, T', D), lengths (B,))``.

    Clip ``b`` drawn for a rate ``r`` gets ``round(lengths[b] / r)`` frames, frame ``j`` linearly interpolated
    at source position ``j * r``: the spectrum of each frame (pitch, formants) is unchanged, only the
    durations change, unlike speed perturbation which scales both. Speakers differ in rate by up to about
    2x for the same word (FSDD's "six": 0.20 s active for one speaker, 0.45 s for another)."""

    def __init__(self, config: AugmentConfig):
        super().__init__()
        self.config = config

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        if c.tempo_prob <= 0:
            return feats, lengths
        batch, _, dim = feats.shape
        rate = torch.empty(batch, device=feats.device).uniform_(c.tempo_min, c.tempo_max)
        rate = torch.where(torch.rand(batch, device=feats.device) < c.tempo_prob, rate, torch.ones_like(rate))
        new_lengths = torch.clamp(torch.round(lengths.to(rate.dtype) / rate), min=1).long()
        last = (lengths - 1).clamp(min=0)[:, None]
        src = torch.arange(int(new_lengths.max()), device=feats.device, dtype=rate.dtype)[None, :] * rate[:, None]
        src = torch.minimum(src, last.to(rate.dtype))
        low = src.floor().long()
        high = torch.minimum(low + 1, last)
        weight = (src - low.to(rate.dtype)).unsqueeze(-1).to(feats.dtype)
        at = lambda index: feats.gather(1, index.unsqueeze(-1).expand(-1, -1, dim))  # noqa: E731
        out = at(low) * (1 - weight) + at(high) * weight
        mask = lengths_to_mask(new_lengths, out.shape[1]).unsqueeze(-1)
        return out.masked_fill(~mask, 0.0), new_lengths


class SpecAugment(nn.Module):
    """Frequency and time masking (torchaudio's, one mask per clip) on ``(batch, frames, dim)`` features."""

    def __init__(self, config: AugmentConfig):
        super().__init__()
        self.config = config

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        c = self.config
        x = feats.transpose(1, 2)  # (B, D, T)
        for _ in range(c.freq_masks):
            x = AF.mask_along_axis_iid(x.unsqueeze(1), c.freq_mask_width, 0.0, axis=2).squeeze(1)
        for _ in range(c.time_masks):
            width = min(c.time_mask_width, max(x.shape[-1] // 5, 1))
            x = AF.mask_along_axis_iid(x.unsqueeze(1), width, 0.0, axis=3).squeeze(1)
        return x.transpose(1, 2)


def seed_everything(seed: int) -> None:
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
