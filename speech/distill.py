"""Knowledge distillation: several trained classifiers teach one (``trainer.distill_from``).

An ensemble of classifiers averages out the errors its members do not share: on the DEV stream of the
live detection benchmark the mean posterior of three of the commands recipe's models finds 51 % of the
commands at <= 10 false accepts an hour where the best of them finds 37 % (``recipes/commands/decision.py``).
Running them all costs as many times the compute; distillation trains one model of the usual size toward their mean posterior instead (Hinton
et al., 2015, "Distilling the knowledge in a neural network"). A teacher with the student's front end sees
the very features the model is trained on, augmentation included, normalized with its own statistics; a
teacher with another front end (log-mels teaching an MFCC model, say) computes its own features from the
same augmented audio, before the feature-space augmentation (SpecAugment, tempo) the student's get.
With ``trainer.distill_clean_channel`` the training loop hands the teachers the clip on the clean channel
instead (``WaveformAugment.with_clean_channel``: no band limit, no telephone line, no feature-space
augmentation), so a student learns a narrow channel from the teachers' answers on the clean one.
"""
from __future__ import annotations

import torch
from torch import nn

from speech.features import lengths_to_mask
from speech.models import SpeechModel


class Teachers(nn.Module):
    """Frozen classifiers with the student's labels and sample rate.

    ``forward(feats (B, T, D), n_frames (B,), wave (B, S), lengths (B,))``: the features as the student's
    front end normalized them, and the (augmented) audio they came from -> the teachers' mean posterior
    ``(B, classes)`` at ``temperature``. ``wave`` may be left out when every teacher has the student's
    front end (``own_features``).
    """

    def __init__(self, models: list[SpeechModel], student: SpeechModel, temperature: float = 1.0):
        super().__init__()
        self.members = nn.ModuleList(models)
        # which teachers read the student's features (the same front end, statistics aside)
        self.own_features = [not student.feature_config.differences(m.feature_config) for m in models]
        # the student's front end, not a copy and not a submodule (its statistics are those the features carry)
        self._student = (student.front_end,)
        self.temperature = float(temperature)
        for p in self.members.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "Teachers":  # always in eval mode (dropout off)
        return super().train(False)

    @torch.no_grad()
    def forward(self, feats: torch.Tensor, n_frames: torch.Tensor, wave: torch.Tensor | None = None,
                lengths: torch.Tensor | None = None) -> torch.Tensor:
        own = self._student[0]
        global_norm = own.config.normalize == "global"  # per utterance or none: the same features for every model
        if global_norm:
            raw = feats * own.std + own.mean
            padding = ~lengths_to_mask(n_frames, feats.shape[1]).unsqueeze(-1)  # stays 0, as the front end leaves it
        probs = None
        for member, same in zip(self.members, self.own_features):
            if not same:
                if wave is None:
                    raise ValueError("a teacher with another front end needs the audio")
                logits, _ = member(wave, lengths)
            else:
                inputs = ((raw - member.front_end.mean) / member.front_end.std).masked_fill(padding, 0.0) if global_norm else feats
                logits, _ = member.forward_features(inputs, n_frames)
            p = torch.softmax(logits.float() / self.temperature, dim=-1)
            probs = p if probs is None else probs + p
        return probs / len(self.members)


def load_teachers(paths: list[str], student: SpeechModel, temperature: float, device) -> Teachers:
    """The models at ``paths`` (files or bundled names) as :class:`Teachers` of ``student`` on ``device``;
    ``ValueError`` with a one-line reason when one cannot teach it (not a classifier, other labels or
    another sample rate)."""
    from speech.checkpoint import ModelFileError, load_model

    if student.is_ctc:
        raise ValueError("distillation is for classifiers; this run trains a CTC model")
    models = []
    for path in paths:
        try:
            teacher = load_model(path)
        except ModelFileError as err:
            raise ValueError(str(err)) from None
        if teacher.is_ctc:
            raise ValueError(f"{path}: a CTC model cannot teach a classifier")
        if list(teacher.labels) != list(student.labels):
            raise ValueError(f"{path}: its labels {teacher.labels} are not this run's {student.labels}")
        if teacher.sample_rate != student.sample_rate:
            raise ValueError(f"{path}: it hears {teacher.sample_rate} Hz audio, this run {student.sample_rate} Hz")
        models.append(teacher)
    return Teachers(models, student, temperature).to(device)


def distillation_loss(logits: torch.Tensor, soft: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``T^2 x KL(soft || softmax(logits / T))``, the mean over the batch: ``logits`` ``(B, classes)``,
    ``soft`` ``(B, classes)`` the teachers' posterior at the same temperature (``T^2`` keeps the gradient's
    scale independent of ``T``)."""
    log_student = torch.log_softmax(logits.float() / temperature, dim=-1)
    return torch.nn.functional.kl_div(log_student, soft, reduction="batchmean") * temperature ** 2


def teachers_for(trainer, student: SpeechModel, device) -> Teachers | None:
    """The :class:`Teachers` a :class:`~speech.config.TrainerConfig` asks for (``distill_from``), or None;
    ``ValueError`` naming the setting when the weight, the temperature or a teacher cannot serve."""
    if not trainer.distill_from:
        return None
    if not 0 <= trainer.distill_weight <= 1 or trainer.distill_temperature <= 0:
        raise ValueError("trainer.distill_weight must be in [0, 1] and trainer.distill_temperature positive")
    try:
        return load_teachers(list(trainer.distill_from), student, trainer.distill_temperature, device)
    except ValueError as err:
        raise ValueError(f"trainer.distill_from: {err}") from None
