"""The model: front end + encoder + head, configured by :class:`ModelConfig` and :class:`FeatureConfig`."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List

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
    ``vocabulary``: ``char`` or ``word`` tokens for CTC.
    ``filler_classes``: classifiers with ``_unknown_``: words the head learns as classes of their own (filler
    models of the other speech, e.g. the digits beside the commands) and reports as ``_unknown_``."""

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
    filler_classes: List[str] = field(default_factory=list)


class SpeechModel(nn.Module):
    """Raw audio in, scores out.

    ``forward(waveform (B, samples), lengths (B,))`` returns ``(output, out_lengths)`` where
    ``output`` is logits ``(B, num_classes)`` for classification or log-probabilities
    ``(B, T', vocab + 1)`` for CTC (blank = 0). ``labels`` are the class names, or the CTC tokens
    without the blank.

    With ``config.filler_classes`` the head has one output more for each filler (``train_labels``: the labels,
    then the fillers), and ``forward`` reports ``len(labels)`` logits: ``_unknown_``'s is the log-sum-exp of its
    own and the fillers', so its posterior is the sum of theirs. Training reads the head's own logits
    (``forward_features(..., fold=False)``); everything else (decoding, live, export) sees ``labels`` only.
    """

    def __init__(self, config: ModelConfig, features: FeatureConfig, labels: list[str]):
        super().__init__()
        if config.head not in ("classification", "ctc"):
            raise ValueError(f"model.head must be classification or ctc, got {config.head!r}")
        self.config, self.feature_config, self.labels = config, features, list(labels)
        fillers = list(config.filler_classes)
        if fillers and (config.head != "classification" or "_unknown_" not in self.labels):
            raise ValueError("model.filler_classes needs a classifier whose labels include _unknown_")
        if set(fillers) & set(self.labels) or len(set(fillers)) < len(fillers):
            raise ValueError(f"model.filler_classes must be new and distinct labels, got {fillers}")
        self.train_labels = self.labels + fillers
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
            self.head = ClassificationHead(self.encoder.output_dim, len(self.train_labels), config.pooling, config.dropout)
        else:
            self.head = CTCHead(self.encoder.output_dim, len(labels), config.dropout)

    @property
    def sample_rate(self) -> int:
        return self.feature_config.sample_rate

    @property
    def is_ctc(self) -> bool:
        return self.config.head == "ctc"

    def forward_features(self, feats: torch.Tensor, n_frames: torch.Tensor,
                         fold: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Features ``(B, T, D)`` (already normalized) -> head output and its lengths (``fold=False``: a
        classifier's logits over ``train_labels``, fillers unfolded)."""
        encoded, enc_lengths = self.encoder(feats, n_frames)
        output = self.head(encoded, enc_lengths)
        return (self.fold_fillers(output) if fold else output), enc_lengths

    def fold_fillers(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits ``(..., len(train_labels))`` -> ``(..., len(labels))``: the fillers' logits folded into
        ``_unknown_``'s by log-sum-exp (the identity without fillers)."""
        n = len(self.labels)
        if len(self.train_labels) == n:
            return logits
        u = self.labels.index("_unknown_")
        unknown = torch.logsumexp(torch.cat([logits[..., u : u + 1], logits[..., n:]], dim=-1), dim=-1, keepdim=True)
        return torch.cat([logits[..., :u], unknown, logits[..., u + 1 : n]], dim=-1)

    def fold_targets(self, targets: torch.Tensor) -> torch.Tensor:
        """Class indices over ``train_labels`` ``(B,)`` -> over ``labels`` (a filler -> ``_unknown_``)."""
        if len(self.train_labels) == len(self.labels):
            return targets
        return targets.masked_fill(targets >= len(self.labels), self.labels.index("_unknown_"))

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats, n_frames = self.front_end(waveform, lengths)
        return self.forward_features(feats, n_frames)


def expanded_head(source: SpeechModel, model: SpeechModel) -> dict[str, torch.Tensor]:
    """The output layer of a classifier warm-started from one with its labels but fewer fillers
    (``model.filler_classes``): the source's rows for the source's classes, and each new filler a copy of the
    ``_unknown_`` row whose bias shares that class's probability among ``_unknown_`` and the new fillers,
    so the model starts out with the source's folded posteriors. ``{}`` when that does not apply."""
    if model.is_ctc or source.is_ctc or source.labels != model.labels or \
            source.train_labels != model.train_labels[: len(source.train_labels)] or source.train_labels == model.train_labels:
        return {}
    weight, bias = source.head.output.weight.detach(), source.head.output.bias.detach()
    u = source.labels.index("_unknown_")
    shares = 1 + len(model.train_labels) - len(source.train_labels)  # _unknown_ and each new filler
    new_bias = bias.clone()
    new_bias[u] -= math.log(shares)
    extra = shares - 1
    return {"head.output.weight": torch.cat([weight, weight[u : u + 1].repeat(extra, 1)]),
            "head.output.bias": torch.cat([new_bias, new_bias[u : u + 1].repeat(extra)])}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
