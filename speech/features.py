"""Feature front ends: log-mel and MFCC as ``nn.Module``s on torchaudio's filter banks and DCT.

The front end lives inside every model, so a saved or exported model takes raw audio. It is batched,
device-agnostic and length-aware: ``(batch, samples)`` + ``lengths`` -> ``(batch, frames, dims)`` +
``frame_lengths``. Frames are centred with zero padding (librosa's default), so a clip gives the same
features alone or padded inside a batch.

The short-time Fourier transform runs through ``torch.stft``; for ONNX/TorchScript export
(``use_conv_stft=True``) it runs as a ``conv1d`` with a windowed DFT basis, which exports everywhere and
matches ``torch.stft`` to ~1e-5 (tested).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional

import torch
import torchaudio.functional as AF
from torch import nn


@dataclass
class FeatureConfig:
    """Front end parameters. ``kind``: ``log_mel`` or ``mfcc``; ``normalize``: ``none``,
    ``utterance`` (mean/variance per clip and dimension) or ``global`` (statistics from the training
    set, saved with the model). ``top_db``: floor each clip's log-mel at its loudest bin minus this many
    dB (librosa's ``power_to_db(top_db=...)``, per clip), so digital silence and a quiet noise floor look
    alike; ``None`` keeps the -100 dB floor."""

    kind: str = "log_mel"
    sample_rate: int = 16000
    win_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int = 512
    n_mels: int = 40
    n_mfcc: int = 13
    f_min: float = 20.0
    f_max: float | None = None
    deltas: int = 0
    normalize: str = "global"
    top_db: Optional[float] = None

    @property
    def win_length(self) -> int:
        return int(round(self.sample_rate * self.win_ms / 1000))

    @property
    def hop_length(self) -> int:
        return int(round(self.sample_rate * self.hop_ms / 1000))

    @property
    def dim(self) -> int:
        base = self.n_mfcc if self.kind == "mfcc" else self.n_mels
        return base * (1 + self.deltas)

    def differences(self, other: "FeatureConfig") -> list[str]:
        """``other``'s settings that are not this one's, as ``name=theirs (this run: ours)`` (empty: the same
        front end), for refusing a model file whose features differ from a run's."""
        ours, theirs = asdict(self), asdict(other)
        return [f"{k}={theirs[k]!r} (this run: {v!r})" for k, v in ours.items() if theirs[k] != v]

    def validate(self) -> "FeatureConfig":
        if self.kind not in ("log_mel", "mfcc"):
            raise ValueError(f"features.kind must be 'log_mel' or 'mfcc', got {self.kind!r}")
        if self.normalize not in ("none", "utterance", "global"):
            raise ValueError(f"features.normalize must be none, utterance or global, got {self.normalize!r}")
        if self.win_length > self.n_fft:
            raise ValueError(f"features.win_ms {self.win_ms} gives {self.win_length} samples > n_fft {self.n_fft}")
        if not 0 <= self.deltas <= 2:
            raise ValueError(f"features.deltas must be 0, 1 or 2, got {self.deltas}")
        if self.kind == "mfcc" and self.n_mfcc > self.n_mels:
            raise ValueError(f"features.n_mfcc {self.n_mfcc} > n_mels {self.n_mels}")
        return self


def compute_deltas(specgram: torch.Tensor, win_length: int = 5) -> torch.Tensor:
    """Delta coefficients over the last axis of ``(..., dim, time)``, edges replicated: the values of
    ``torchaudio.functional.compute_deltas``, written with slices so that traced graphs (ONNX,
    TorchScript) keep a dynamic batch and time (torchaudio's grouped conv1d bakes the batch size in)."""
    n = (win_length - 1) // 2
    denom = n * (n + 1) * (2 * n + 1) / 3
    time = specgram.shape[-1]
    flat = specgram.reshape(-1, specgram.shape[-2], time)
    padded = nn.functional.pad(flat, (n, n), mode="replicate")
    out = torch.zeros_like(flat)
    for k in range(1, n + 1):
        out = out + k * (padded[..., n + k : n + k + time] - padded[..., n - k : n - k + time])
    return (out / denom).reshape(specgram.shape)


def frame_lengths(lengths: torch.Tensor, hop_length: int) -> torch.Tensor:
    """Number of centred frames for clips of ``lengths`` samples: ``1 + lengths // hop``."""
    return torch.div(lengths, hop_length, rounding_mode="floor") + 1


def lengths_to_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """``(batch,)`` lengths -> ``(batch, max_len)`` bool mask, True on valid steps."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


class FrontEnd(nn.Module):
    """Raw audio to normalized log-mel or MFCC features.

    ``forward(waveform (batch, samples), lengths (batch,))`` -> ``(features (batch, frames, dim),
    frame_lengths (batch,))``. Padded frames are zero.
    """

    def __init__(self, config: FeatureConfig):
        super().__init__()
        self.config = config.validate()
        c = config
        self.n_fft, self.hop_length = c.n_fft, c.hop_length
        self.use_conv_stft = False
        self.chunk_frames = 512  # CPU batches run in groups of about this many frames (see raw_features)
        window = torch.hann_window(c.win_length, periodic=True)
        left = (c.n_fft - c.win_length) // 2
        window = nn.functional.pad(window, (left, c.n_fft - c.win_length - left))
        self.register_buffer("window", window, persistent=False)
        n_freqs = c.n_fft // 2 + 1
        fbanks = AF.melscale_fbanks(
            n_freqs, c.f_min, c.f_max or c.sample_rate / 2, c.n_mels, c.sample_rate, norm="slaney", mel_scale="slaney"
        )
        self.register_buffer("mel_fbanks", fbanks, persistent=False)  # (n_freqs, n_mels)
        if c.kind == "mfcc":
            self.register_buffer("dct", AF.create_dct(c.n_mfcc, c.n_mels, norm="ortho"), persistent=False)
        # Global normalization statistics; saved with the model (persistent buffers).
        self.register_buffer("mean", torch.zeros(c.dim))
        self.register_buffer("std", torch.ones(c.dim))

    def _power_spectrum(self, padded: torch.Tensor) -> torch.Tensor:
        """``(batch, samples + n_fft)`` zero-padded audio -> ``(batch, frames, n_freqs)`` power."""
        if self.use_conv_stft:
            return self._conv_power_spectrum(padded)
        spec = torch.stft(
            padded, self.n_fft, self.hop_length, window=self.window, center=False, return_complex=True
        )
        return spec.real.square().add(spec.imag.square()).transpose(1, 2)

    def _conv_power_spectrum(self, padded: torch.Tensor) -> torch.Tensor:
        n_freqs = self.n_fft // 2 + 1
        k = torch.arange(n_freqs, device=padded.device, dtype=padded.dtype)[:, None]
        n = torch.arange(self.n_fft, device=padded.device, dtype=padded.dtype)[None, :]
        angle = (2 * math.pi / self.n_fft) * torch.remainder(k * n, self.n_fft)  # k*n exact; reduce before scaling
        basis = torch.cat([torch.cos(angle), -torch.sin(angle)], 0) * self.window[None, :]
        out = nn.functional.conv1d(padded[:, None, :], basis[:, None, :], stride=self.hop_length)
        re, im = out[:, :n_freqs], out[:, n_freqs:]
        return (re.square() + im.square()).transpose(1, 2)

    def warped_fbanks(self, warp: torch.Tensor) -> torch.Tensor:
        """Vocal-tract-length perturbation (Jaitly & Hinton, 2013): the mel filter bank of each clip
        ``(batch, n_freqs, n_mels)`` read on a frequency axis warped by ``warp (batch,)`` (about 0.9-1.1).

        Frequency ``f`` maps to ``alpha * f`` below ``f_hi = 0.85 * nyquist * min(alpha, 1) / alpha`` (so the
        warped frequency there stays under 0.85 * nyquist) and linearly onto the Nyquist frequency above it
        (Jaitly & Hinton's piecewise-linear warp), so the band edges stay put. Each filter is a triangle on
        the warped axis; filters are not renormalized, so a clip's level moves by about
        ``-10 log10(alpha)`` dB (under 0.5 dB for 0.9-1.1, as in Kaldi's VTLN warping)."""
        n_freqs = self.mel_fbanks.shape[0]
        bins = torch.arange(n_freqs, device=warp.device, dtype=self.mel_fbanks.dtype)[None, :]  # (1, F)
        nyq = float(n_freqs - 1)
        alpha = warp.to(bins.dtype)[:, None]
        f_hi = 0.85 * nyq * torch.clamp(alpha, max=1.0) / alpha
        upper = alpha * f_hi + (nyq - alpha * f_hi) * (bins - f_hi) / (nyq - f_hi)
        pos = torch.where(bins <= f_hi, alpha * bins, upper).clamp(0, nyq)  # warped bin of each bin, (B, F)
        lo = pos.floor().long().clamp(max=n_freqs - 2)
        frac = (pos - lo).unsqueeze(-1)
        fb = self.mel_fbanks
        return fb[lo] * (1 - frac) + fb[lo + 1] * frac

    def raw_features(
        self, waveform: torch.Tensor, lengths: torch.Tensor, warp: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Un-normalized features ``(batch, frames, dim)`` and ``frame_lengths``; ``warp (batch,)``:
        per-clip vocal-tract-length warp factors (training augmentation, see ``warped_fbanks``).

        On the CPU with one torch thread (eager ``torch.stft``) a large batch runs in groups of about
        ``chunk_frames`` frames: the spectra of 64 1 s clips (13 MB) miss the CPU cache and often come
        from freshly mapped pages (up to ~170 page faults per clip), which made batches of 32-128 1.5-4x
        slower per clip than groups of 5 (tools/bench_features.py). With more threads the many small ops
        stalled on a busy machine, so they keep the whole batch. Every op is per clip: same result."""
        step = max(1, self.chunk_frames // (waveform.shape[-1] // self.hop_length + 1))
        if (step < waveform.shape[0] and waveform.device.type == "cpu" and not self.use_conv_stft
                and torch.get_num_threads() == 1 and not torch.jit.is_tracing() and not torch.jit.is_scripting()):
            warps = warp.split(step) if warp is not None else [None] * len(lengths.split(step))
            parts = [self.raw_features(w, l, a) for w, l, a in zip(waveform.split(step), lengths.split(step), warps)]
            return torch.cat([f for f, _ in parts]), torch.cat([n for _, n in parts])
        c = self.config
        if waveform.dtype != torch.float32:
            waveform = waveform.float()
        half = self.n_fft // 2
        padded = nn.functional.pad(waveform, (half, half))
        power = self._power_spectrum(padded)  # (B, T, F)
        mel = torch.matmul(power, self.mel_fbanks if warp is None else self.warped_fbanks(warp))
        feats = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))  # dB, as librosa.power_to_db(top_db=None)
        n_frames = frame_lengths(lengths, self.hop_length)
        if c.top_db is not None:  # per clip, over its own frames only (padding cannot raise the peak)
            valid = lengths_to_mask(n_frames, feats.shape[1]).unsqueeze(-1)
            peak = feats.masked_fill(~valid, -100.0).amax(dim=(1, 2), keepdim=True)
            feats = torch.maximum(feats, peak - c.top_db)
        if c.kind == "mfcc":
            feats = torch.matmul(feats, self.dct)
        if c.deltas:
            # compute_deltas replicates the edge frames; hold each clip's last valid frame over its padding
            # so the deltas near its end are the same alone or padded in a batch
            steps = torch.arange(feats.shape[1], device=feats.device)[None, :]
            hold = torch.minimum(steps, (n_frames - 1)[:, None]).unsqueeze(1)  # (B, 1, T)
            t = feats.transpose(1, 2)
            parts = [t]
            for _ in range(c.deltas):
                held = parts[-1].gather(2, hold.expand_as(parts[-1]))
                parts.append(compute_deltas(held))
            feats = torch.cat(parts, 1).transpose(1, 2)
        mask = lengths_to_mask(n_frames, feats.shape[1]).unsqueeze(-1)
        return feats.masked_fill(~mask, 0.0), n_frames

    def forward(
        self, waveform: torch.Tensor, lengths: torch.Tensor, warp: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        feats, n_frames = self.raw_features(waveform, lengths, warp)
        mask = lengths_to_mask(n_frames, feats.shape[1]).unsqueeze(-1)
        norm = self.config.normalize
        if norm == "global":
            feats = (feats - self.mean) / self.std
        elif norm == "utterance":
            count = n_frames.clamp(min=1).to(feats.dtype)[:, None, None]
            mean = feats.sum(1, keepdim=True) / count
            var = ((feats - mean).masked_fill(~mask, 0.0).square().sum(1, keepdim=True)) / count
            feats = (feats - mean) / torch.sqrt(var + 1e-5)
        return feats.masked_fill(~mask, 0.0), n_frames

    @torch.no_grad()
    def set_statistics(self, mean: torch.Tensor, std: torch.Tensor, floor: float = 1e-2) -> None:
        """Set global normalization statistics ``(dim,)``; ``std`` is floored so silent bins stay finite."""
        self.mean.copy_(mean)
        self.std.copy_(torch.clamp(std, min=floor))


class FeatureStatistics:
    """Running per-dimension mean and standard deviation over valid frames (for ``normalize=global``)."""

    def __init__(self, dim: int):
        self.count = 0
        self.total = torch.zeros(dim, dtype=torch.float64)
        self.total_sq = torch.zeros(dim, dtype=torch.float64)

    def update(self, feats: torch.Tensor, n_frames: torch.Tensor) -> None:
        """Add ``(batch, frames, dim)`` features; padded frames are skipped."""
        mask = lengths_to_mask(n_frames, feats.shape[1])
        valid = feats[mask].double().cpu()
        self.count += valid.shape[0]
        self.total += valid.sum(0)
        self.total_sq += valid.square().sum(0)

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.total / max(self.count, 1)
        var = (self.total_sq / max(self.count, 1) - mean.square()).clamp(min=0)
        return mean.float(), var.sqrt().float()
