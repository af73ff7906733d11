"""Output heads: utterance classification (masked pooling + linear) and per-frame CTC."""
from __future__ import annotations

import torch
from torch import nn

from speech.features import lengths_to_mask


class ClassificationHead(nn.Module):
    """Masked attention (or mean) pooling over time, then a linear layer.

    ``forward(encoded (B, T, H), lengths (B,))`` -> logits ``(B, num_classes)``.
    """

    def __init__(self, input_dim: int, num_classes: int, pooling: str = "attention", dropout: float = 0.1):
        super().__init__()
        if pooling not in ("attention", "mean"):
            raise ValueError(f"model.pooling must be attention or mean, got {pooling!r}")
        self.pooling = pooling
        self.attention = nn.Linear(input_dim, 1) if pooling == "attention" else None
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(input_dim, num_classes)

    def pool(self, encoded: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = lengths_to_mask(lengths, encoded.shape[1])
        if self.attention is not None:
            scores = self.attention(encoded).squeeze(-1).masked_fill(~mask, float("-inf"))
            weights = torch.softmax(scores, dim=1)
        else:
            weights = mask.to(encoded.dtype) / lengths.clamp(min=1)[:, None].to(encoded.dtype)
        return torch.bmm(weights.unsqueeze(1), encoded).squeeze(1)

    def forward(self, encoded: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.output(self.dropout(self.pool(encoded, lengths)))


class CTCHead(nn.Module):
    """Per-frame log-probabilities over the vocabulary plus blank (index 0).

    ``forward(encoded (B, T, H), lengths)`` -> log-probabilities ``(B, T, vocab_size + 1)``.
    """

    def __init__(self, input_dim: int, vocab_size: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(input_dim, vocab_size + 1)

    def forward(self, encoded: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.output(self.dropout(encoded)).float(), dim=-1)
