"""Encoder: frame subsampling, then a stack of (bi)directional GRU layers that respect each clip's length.

Lengths are honoured without packing: the forward direction runs on the padded batch (padding comes
after the valid frames, so it cannot reach them), and the backward direction runs on each clip reversed
within its own length. The result is exact (a clip gives the same output alone or in a batch) and the
graph exports to ONNX/TorchScript with dynamic batch and length.
"""
from __future__ import annotations

import torch
from torch import nn

from speech.features import lengths_to_mask


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence of ``x (batch, time, dim)`` within its length; padding stays in place."""
    steps = torch.arange(x.shape[1], device=x.device)[None, :]
    index = lengths[:, None] - 1 - steps
    index = torch.where(index >= 0, index, steps)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


class FrameStacking(nn.Module):
    """Subsample by concatenating ``factor`` consecutive frames: ``(B, T, D)`` -> ``(B, ceil(T/f), D*f)``."""

    def __init__(self, input_dim: int, factor: int):
        super().__init__()
        self.factor = factor
        self.output_dim = input_dim * factor

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.factor
        batch, time, dim = x.shape
        pad = (-time) % f
        x = nn.functional.pad(x, (0, 0, 0, pad))
        x = x.reshape(batch, (time + pad) // f, dim * f)
        return x, torch.div(lengths + f - 1, f, rounding_mode="floor")


def strided_output(y: torch.Tensor, lengths: torch.Tensor, factor: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A strided convolution's output ``(B, T', D)`` with the steps past each clip's
    ``ceil(lengths / factor)`` zeroed, and those lengths."""
    out_lengths = torch.div(lengths - 1, factor, rounding_mode="floor") + 1
    return y.masked_fill(~lengths_to_mask(out_lengths, y.shape[1]).unsqueeze(-1), 0.0), out_lengths


class ConvSubsampling(nn.Module):
    """Subsample with a 1-D convolution over time (kernel ``2*factor-1``, stride ``factor``) and ReLU."""

    def __init__(self, input_dim: int, factor: int, channels: int):
        super().__init__()
        self.factor = factor
        self.conv = nn.Conv1d(input_dim, channels, kernel_size=2 * factor - 1, stride=factor, padding=factor - 1)
        self.output_dim = channels

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)
        return strided_output(y, lengths, self.factor)


class Conv2dSubsampling(nn.Module):
    """Subsample with two 2-D convolutions over (time, frequency), each with ReLU:
    ``(B, T, D)`` -> ``(B, ceil(T/f), channels * ceil(ceil(D/2)/2))``.

    The first sees ``2*factor-1`` frames (stride ``factor``) by 3 bins (stride 2), the second 1 frame by
    3 bins (stride 2): the time context is that of :class:`ConvSubsampling` (so streaming works the same),
    while the shared filters slide along the frequency axis, which makes a formant pattern that moved a
    few bins (another speaker's vocal tract) look alike.
    """

    def __init__(self, input_dim: int, factor: int, channels: int):
        super().__init__()
        self.factor = factor
        self.conv1 = nn.Conv2d(1, channels, kernel_size=(2 * factor - 1, 3), stride=(factor, 2), padding=(factor - 1, 1))
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=(1, 3), stride=(1, 2), padding=(0, 1))
        freq = (input_dim + 1) // 2
        self.output_dim = channels * ((freq + 1) // 2)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.relu(self.conv1(x.unsqueeze(1)))  # (B, C, T', D/2)
        y = torch.relu(self.conv2(y))  # (B, C, T', D/4)
        y = y.permute(0, 2, 1, 3).flatten(2)  # (B, T', C * D/4)
        return strided_output(y, lengths, self.factor)


class GRULayer(nn.Module):
    """One GRU layer, both directions when ``bidirectional``; ``(B, T, D)`` -> ``(B, T, H*dirs)``.

    With ``bidirectional=False`` it can run statefully on chunks: pass the returned ``state``
    ``(1, B, H)`` back in to continue a stream.
    """

    def __init__(self, input_dim: int, hidden_size: int, bidirectional: bool):
        super().__init__()
        self.forward_rnn = nn.GRU(input_dim, hidden_size, batch_first=True)
        self.backward_rnn = nn.GRU(input_dim, hidden_size, batch_first=True) if bidirectional else None

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out, new_state = self.forward_rnn(x, state)
        if self.backward_rnn is not None:
            back, _ = self.backward_rnn(reverse_padded(x, lengths))
            out = torch.cat([out, reverse_padded(back, lengths)], -1)
        return out, new_state


class Encoder(nn.Module):
    """Subsampling + GRU stack. ``forward(features (B, T, D), lengths (B,))`` ->
    ``(encoded (B, T', H*dirs), lengths (B,))`` with padded steps zeroed."""

    def __init__(
        self,
        input_dim: int,
        hidden_size: int = 128,
        num_layers: int = 2,
        dropout: float = 0.1,
        bidirectional: bool = True,
        subsampling: str = "stack",
        subsampling_factor: int = 2,
        conv_channels: int = 32,
    ):
        super().__init__()
        if subsampling_factor < 1:
            raise ValueError(f"model.subsampling_factor must be >= 1, got {subsampling_factor}")
        if subsampling == "stack" and subsampling_factor > 1:
            self.subsampling = FrameStacking(input_dim, subsampling_factor)
        elif subsampling == "conv" and subsampling_factor > 1:
            self.subsampling = ConvSubsampling(input_dim, subsampling_factor, hidden_size)
        elif subsampling == "conv2d" and subsampling_factor >= 1:
            self.subsampling = Conv2dSubsampling(input_dim, subsampling_factor, conv_channels)
        elif subsampling in ("none", "stack", "conv"):
            self.subsampling = None
        else:
            raise ValueError(f"model.subsampling must be none, stack, conv or conv2d, got {subsampling!r}")
        dim = self.subsampling.output_dim if self.subsampling is not None else input_dim
        self.layers = nn.ModuleList()
        for _ in range(num_layers):
            self.layers.append(GRULayer(dim, hidden_size, bidirectional))
            dim = hidden_size * (2 if bidirectional else 1)
        self.dropout = nn.Dropout(dropout)
        self.output_dim = dim

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor, states: list[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out, lengths, _ = self.forward_with_state(x, lengths, states)
        return out, lengths

    def forward_with_state(
        self, x: torch.Tensor, lengths: torch.Tensor, states: list[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Like ``forward`` and also returns each layer's final forward state (for streaming)."""
        if self.subsampling is not None:
            x, lengths = self.subsampling(x, lengths)
        new_states = []
        for i, layer in enumerate(self.layers):
            x, state = layer(x, lengths, None if states is None else states[i])
            new_states.append(state)
            if i < len(self.layers) - 1:
                x = self.dropout(x)
        mask = lengths_to_mask(lengths, x.shape[1]).unsqueeze(-1)
        return x.masked_fill(~mask, 0.0), lengths, new_states
