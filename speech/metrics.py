"""Scores: accuracy and confusion for classifiers; edit-distance error rates for transcripts."""
from __future__ import annotations

import torch


def edit_distance(reference: list, hypothesis: list) -> int:
    """Levenshtein distance between two token sequences."""
    previous = list(range(len(hypothesis) + 1))
    for i, r in enumerate(reference, 1):
        current = [i] + [0] * len(hypothesis)
        for j, h in enumerate(hypothesis, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1]


def transcript_metrics(references: list[str], hypotheses: list[str]) -> dict[str, float]:
    """``cer``, ``wer`` (edits / reference length, over the whole set) and ``sequence_accuracy``."""
    char_edits = sum(edit_distance(list(r), list(h)) for r, h in zip(references, hypotheses))
    word_edits = sum(edit_distance(r.split(), h.split()) for r, h in zip(references, hypotheses))
    chars = max(sum(len(r) for r in references), 1)
    words = max(sum(len(r.split()) for r in references), 1)
    exact = sum(r == h for r, h in zip(references, hypotheses))
    return {
        "cer": char_edits / chars,
        "wer": word_edits / words,
        "sequence_accuracy": exact / max(len(references), 1),
        "count": len(references),
    }


def confusion_matrix(targets: list[int], predictions: list[int], num_classes: int) -> torch.Tensor:
    """``(num_classes, num_classes)`` counts; rows are the true class, columns the prediction."""
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)
    for t, p in zip(targets, predictions):
        matrix[t, p] += 1
    return matrix


def classification_metrics(targets: list[int], predictions: list[int], labels: list[str]) -> dict:
    """``accuracy``, ``count`` and per-class ``precision``/``recall``/``support``."""
    matrix = confusion_matrix(targets, predictions, len(labels))
    correct = int(matrix.diag().sum())
    total = int(matrix.sum())
    per_class = {}
    for i, name in enumerate(labels):
        tp = int(matrix[i, i])
        predicted, actual = int(matrix[:, i].sum()), int(matrix[i].sum())
        per_class[name] = {
            "precision": tp / predicted if predicted else 0.0,
            "recall": tp / actual if actual else 0.0,
            "support": actual,
        }
    return {"accuracy": correct / max(total, 1), "count": total, "per_class": per_class, "confusion": matrix.tolist()}
