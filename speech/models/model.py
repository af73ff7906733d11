"""The model: front end + encoder + head, configured by :class:`ModelConfig` and :class:`FeatureConfig`."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from speech.features import FeatureConfig, FrontEnd
from speech.models.encoder import Encoder
from speech.models.heads import ClassificationHead, CTCHead


@dataclass
class ModelConfig:
    """``head``: ``classification`` (one label per clip) or ``ctc`` (a transcript).
    ``subsampling``: ``none``, ``stack`` (frame stacking), ``conv`` (1-D over time) or ``conv2d`` (2-D over
    time and frequency, ``conv_channels`` filters), each by ``subsampling_factor`` in time.
    ``vocabulary``: ``char`` or ``word`` tokens for CTC."""

    head: str = "classification"
    hidden_size: int = 128
    num_layers: int = 2
    dropout: float = 0.1
    bidirectional: bool = True
    subsampling: str = "stack"
    subsampling_factor: int = 2
    conv_channels: int = 32  # subsampling=conv2d only
    pooling: str = "attention"
    vocabulary: str = "char"


class SpeechModel(nn.Module):
    """Raw audio in, scores out.

    ``forward(waveform (B, samples), lengths (B,))`` returns ``(output, out_lengths)`` where
    ``output`` is logits ``(B, num_classes)`` for classification or log-probabilities
    ``(B, T', vocab + 1)`` for CTC (blank = 0). ``labels`` are the class names, or the CTC tokens
    without the blank.
    """

    def __init__(self, config: ModelConfig, features: FeatureConfig, labels: list[str]):
        super().__init__()
        if config.head not in ("classification", "ctc"):
            raise ValueError(f"model.head must be classification or ctc, got {config.head!r}")
        self.config, self.feature_config, self.labels = config, features, list(labels)
        self.front_end = FrontEnd(features)
        self.encoder = Encoder(
            features.dim,
            config.hidden_size,
            config.num_layers,
            config.dropout,
            config.bidirectional,
            config.subsampling,
            config.subsampling_factor,
            config.conv_channels,
        )
        if config.head == "classification":
            self.head = ClassificationHead(self.encoder.output_dim, len(labels), config.pooling, config.dropout)
        else:
            self.head = CTCHead(self.encoder.output_dim, len(labels), config.dropout)

    @property
    def sample_rate(self) -> int:
        return self.feature_config.sample_rate

    @property
    def is_ctc(self) -> bool:
        return self.config.head == "ctc"

    def forward_features(self, feats: torch.Tensor, n_frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features ``(B, T, D)`` (already normalized) -> head output and its lengths."""
        encoded, enc_lengths = self.encoder(feats, n_frames)
        return self.head(encoded, enc_lengths), enc_lengths

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats, n_frames = self.front_end(waveform, lengths)
        return self.forward_features(feats, n_frames)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
