"""Stateful streaming of unidirectional models: :class:`StreamingModel` runs a model trained with
``model.bidirectional=false`` chunk by chunk with carried GRU states; its outputs equal whole-clip outputs."""
from __future__ import annotations

import math

import numpy as np
import torch


class StreamingModel:
    """Run a unidirectional :class:`~speech.models.SpeechModel` on a stream, chunk by chunk.

    ``push(samples (n,))`` -> outputs for the frames now complete: CTC log-probabilities
    ``(T_new, vocab + 1)``, or for classifiers the encoder outputs ``(T_new, H)`` (``logits()`` pools
    everything so far, exactly as the whole clip would be pooled). ``finish()`` ends the stream (right
    zero padding as for a whole clip) and returns the remaining outputs — for classifiers the logits
    ``(classes,)``. The concatenated outputs equal ``model(whole clip)``.

    The front end runs on overlapping audio: frame ``t`` is centred on sample ``t * hop`` and needs
    ``n_fft / 2`` samples either side, so each chunk starts ``ceil(n_fft / 2 / hop)`` frames early and
    those frames are dropped. Subsampling (``stack``/``conv``, factor ``f``) needs frames up to
    ``k * f + f - 1`` for output ``k``; each chunk starts one group early for the conv's left context.
    The GRU layers carry their states.
    """

    def __init__(self, model):
        cfg, fc = model.config, model.feature_config
        if cfg.bidirectional:
            raise ValueError("streaming needs a model trained with model.bidirectional=false")
        if fc.normalize == "utterance" or fc.deltas:
            raise ValueError("streaming needs features.normalize none/global and features.deltas=0")
        self.model = model.eval()
        self.hop = model.front_end.hop_length
        self.half = model.front_end.n_fft // 2
        self.margin = math.ceil(self.half / self.hop)
        sub = model.encoder.subsampling
        self.factor = sub.factor if sub is not None else 1
        self.reset()

    def reset(self) -> None:
        self.audio = np.zeros(0, dtype=np.float32)
        self.audio_start = 0  # absolute sample index of audio[0]
        self.total = 0
        self.next_frame = 0
        self.frames = torch.zeros(0, self.model.feature_config.dim)
        self.frames_start = 0  # frame index of frames[0]
        self.next_group = 0
        self.states: list[torch.Tensor | None] = [None] * len(self.model.encoder.layers)
        self.pool_max = torch.tensor(-math.inf)
        self.pool_weight = torch.tensor(0.0)
        self.pool_sum = torch.zeros(self.model.encoder.output_dim)
        self.pool_count = 0

    @torch.inference_mode()
    def push(self, samples: np.ndarray) -> torch.Tensor:
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self.audio = np.concatenate([self.audio, samples])
        self.total += len(samples)
        last_frame = (self.total - self.half) // self.hop  # its window ends inside the audio we have
        return self._step(last_frame, final=False)

    @torch.inference_mode()
    def finish(self) -> torch.Tensor:
        out = self._step(self.total // self.hop, final=True)
        if self.model.is_ctc:
            return out
        return self.logits()

    def logits(self) -> torch.Tensor:
        """Classifiers: ``(classes,)`` logits of everything pushed so far (the head's pooling, running)."""
        head = self.model.head
        pooled = self.pool_sum / self.pool_weight if head.attention is not None else self.pool_sum / max(self.pool_count, 1)
        return self.model.fold_fillers(head.output(pooled))

    def _step(self, last_frame: int, final: bool) -> torch.Tensor:
        fe = self.model.front_end
        if last_frame >= self.next_frame:
            first = self.next_frame - self.margin
            start, end = first * self.hop, self.total
            chunk = self.audio[max(start, self.audio_start) - self.audio_start : end - self.audio_start]
            chunk = np.concatenate([np.zeros(max(0, self.audio_start - start), np.float32), chunk])  # before the start
            wave = torch.from_numpy(chunk)[None]
            feats, _ = fe(wave, torch.tensor([len(chunk)]))
            new = feats[0, self.margin : self.margin + last_frame - self.next_frame + 1]
            self.frames = torch.cat([self.frames, new])
            self.next_frame = last_frame + 1
            keep_from = (self.next_frame - self.margin) * self.hop
            self.audio = self.audio[max(0, keep_from - self.audio_start) :]
            self.audio_start = max(self.audio_start, keep_from)
        return self._encode(final)

    def _encode(self, final: bool) -> torch.Tensor:
        f = self.factor
        n_frames = self.next_frame  # frames computed so far
        last_group = (n_frames + f - 1) // f - 1 if final else (n_frames - f) // f
        if last_group < self.next_group:
            return self._empty()
        enc = self.model.encoder
        context = 1 if enc.subsampling is not None and self.next_group > 0 else 0  # one group early (conv)
        begin = (self.next_group - context) * f
        x = self.frames[begin - self.frames_start : n_frames - self.frames_start][None]
        lengths = torch.tensor([x.shape[1]])
        if enc.subsampling is not None:
            x, lengths = enc.subsampling(x, lengths)
            x = x[:, context : context + last_group - self.next_group + 1]
            lengths = torch.tensor([x.shape[1]])
        for i, layer in enumerate(enc.layers):
            x, self.states[i] = layer(x, lengths, self.states[i])
        self.next_group = last_group + 1
        drop = (self.next_group - (1 if enc.subsampling is not None else 0)) * f - self.frames_start
        self.frames, self.frames_start = self.frames[drop:], self.frames_start + drop
        if self.model.is_ctc:
            return self.model.head(x, lengths)[0]
        self._pool(x[0])
        return x[0]

    def _pool(self, encoded: torch.Tensor) -> None:
        head = self.model.head
        if head.attention is None:
            self.pool_sum = self.pool_sum + encoded.sum(0)
            self.pool_count += len(encoded)
            return
        scores = head.attention(encoded).squeeze(-1)
        new_max = torch.maximum(self.pool_max, scores.max())
        scale = torch.exp(self.pool_max - new_max)
        weights = torch.exp(scores - new_max)
        self.pool_weight = self.pool_weight * scale + weights.sum()
        self.pool_sum = self.pool_sum * scale + weights @ encoded
        self.pool_max = new_max

    def _empty(self) -> torch.Tensor:
        dim = len(self.model.labels) + 1 if self.model.is_ctc else self.model.encoder.output_dim
        return torch.zeros(0, dim)
